"""chat terminal client (prompt_toolkit); not ready yet."""
