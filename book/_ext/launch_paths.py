"""Point the launch buttons of executed chapters at the committed notebooks.

The book renders ``book/executed/<name>.ipynb`` (written by papermill, not under version control),
so sphinx-book-theme's Binder and Colab links, which use the page's own path, would open a file
that is not in the repository. This extension rewrites them to ``notebooks/<name>.ipynb``: the
clean, parameterised notebook a reader should run. The download button keeps the executed copy,
outputs included. Runs after the theme adds the buttons (its handler has priority 501).
"""

EXECUTED = "book/executed/"
SOURCE = "notebooks/"


def _rewrite(buttons: list, name: str) -> None:
    for button in buttons:
        if button.get("label") == "launch-buttons":
            for link in button.get("buttons", []):
                if "url" in link:
                    link["url"] = link["url"].replace(f"{EXECUTED}{name}.ipynb", f"{SOURCE}{name}.ipynb")


def point_launch_buttons_at_sources(app, pagename, templatename, context, doctree):
    if not pagename.startswith(EXECUTED):
        return
    _rewrite(context.get("header_buttons", []), pagename[len(EXECUTED):])


def setup(app):
    app.connect("html-page-context", point_launch_buttons_at_sources, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
