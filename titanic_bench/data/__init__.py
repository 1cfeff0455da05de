"""The Titanic training set: load, validate and fingerprint it; the Kaggle download."""
