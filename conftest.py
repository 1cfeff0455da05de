"""Root conftest: the harness itself is the ``titanic_bench`` plugin (pytest11 entry point).

``pytester`` drives the plugin's acceptance tests in ``tests/``.
"""

pytest_plugins = ("pytester",)
