"""The ``tdn`` command line (:mod:`cli.main`): the top layer, one module per subcommand."""
