"""The ``certgate`` command line: one module per noun, assembled in ``main``.

Commands print one clear sentence on error and exit 1 (2 for usage errors); they
never print a traceback and never leave half-written state behind.
"""
