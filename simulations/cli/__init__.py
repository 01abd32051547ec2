"""The ``recarena`` command line (``main``) and its subcommand modules."""

__all__: list[str] = []
