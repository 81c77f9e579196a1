"""Runs: the manager that drives LangGraph graphs, and the log capture around them."""
