"""The `searchkit` command: parse, make one library call, format, map errors (app.py).

Each command module holds one group of commands; they are registered here, in the
order that ``searchkit --help`` lists them. Library imports stay inside the commands,
so that ``--help`` loads no model, FAISS or web framework.
"""

from searchkit.cli import push, reading, serve, text, writing
from searchkit.cli.app import app, command, main

__all__ = ["app", "main"]

for _name, _run in (
    ("similarity", text.similarity_cmd),
    ("embed", text.embed_cmd),
    ("index", writing.index_cmd),
    ("index-field", writing.index_field_cmd),
    ("query", reading.query_cmd),
    ("info", reading.info_cmd),
    ("export", reading.export_cmd),
    ("push", push.push_cmd),
    ("delete", writing.delete_cmd),
    ("compact", writing.compact_cmd),
    ("rebuild", writing.rebuild_cmd),
    ("check", writing.check_cmd),
    ("serve", serve.serve_cmd),
    ("eval", reading.eval_cmd),
):
    command(_name)(_run)
