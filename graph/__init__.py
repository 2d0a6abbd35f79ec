"""The GraphQL schema: Strawberry types, inputs, and the request Context with its loaders.

Imports run one way: graph/schema.py -> resolvers/ -> graph/ types -> graph/context.py
(Context, loaders) -> services/ -> models/, so no module of graph/ but schema.py imports
resolvers/, and a type imports only the types below it (definition <- event <- session <-
user); the few fields that return a type above their own (Event.session, Event.user,
Session.user) name it lazily and build it through `info.context.build`.
tests/test_import_graph.py holds the house to this.
"""
