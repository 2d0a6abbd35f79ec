"""Root-field resolvers: GraphQL arguments to service calls, service errors to UserErrors.

They build graph/ types and are imported by graph/schema.py alone; no graph/ type imports
them (see graph/__init__.py for the whole direction of imports).
"""
