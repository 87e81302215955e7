"""Built-in plugins: the core's own implementations, registered through the same hooks as any plugin.

Each module here is listed in `cc_core.plugins.DEFAULT_PLUGINS` and implements hooks from
`cc_core.hookspecs`; importing one is cheap (the classes load when the hook runs).
"""
