"""The book's tooling: chapter declarations, notebook helpers (parameters, glue, plots), the
papermill build and the page checker. Nothing else in ckt imports it."""
