"""The ``agnes`` command-line client (runs on analysts' laptops)."""
