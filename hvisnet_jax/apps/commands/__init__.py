"""One module per group of `hvisnet` sub-commands: its parser and the function it runs.

Adding a command touches one module here and the list in `hvisnet_jax/cli.py`."""
