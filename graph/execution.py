"""A graphql-core executor that resolves fields without most of the per-field machinery.

Fast path (USERTRAIL_FAST_PATHS, on by default; off: Strawberry's own execution context).
Replaces: graphql-core's `execute_fields` / `execute_field` / `complete_value` for planned
fields, and Strawberry's resolver wrapper for direct calls. Pays: the nested users →
sessions(5) → events(10) query (first 50) takes 1.3-1.5× the wall time and 1.5-1.7× the CPU
without it (`python -m bench.internals`, 300 demo people, two runs, December 2026). Written
for graphql-core 3.3.2 (`graphql.execution.executor`, `collect_fields`, `values`) and
strawberry-graphql 0.341.3 (`StrawberryGraphQLCoreExecutionContext`); pyproject.toml bounds
both and requirements.lock pins them. tests/graph/test_execution.py and test_page_objects.py
hold it to the stock executor. It runs over 400 lines on purpose: it mirrors graphql-core's
`execute_fields` / `execute_field` / `complete_*` one method each, to be read beside them.

graphql-core resolves every field the same way: a `GraphQLResolveInfo`, the argument
values, Strawberry's resolver wrapper (which builds an `Info` and converts arguments),
then `complete_value` walking the type. For a field that only reads an attribute of its
parent (most fields of a page: `userId`, `time`, `edges`, `node`, ...) that is ~10 µs of
Python for nothing; a nested page of a few thousand nodes spends most of its time there.

`FastExecutor` plans each selection set once per request (graph/field_plans.py): fields
read directly are resolved without info or arguments, resolvers are called without
Strawberry's wrapper when their arguments need no conversion, and leaves, objects and
lists of them are completed inline, like graphql-jit does. Everything else (awaitable
values, abstract types, `@stream`, iterables that are not lists, extensions with a
`resolve` hook) goes through graphql-core's own `execute_field` / `complete_value`.
Errors are raised, located and propagated as graphql-core does: the inline paths raise the
same errors (`complete_leaf_value`, `invalid_return_type_error`, the non-null message) and
hand them to the executor's `handle_field_error` with the same type, nodes and path.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import date, datetime, time
from decimal import Decimal
from types import CoroutineType, GeneratorType
from typing import Any

from graphql import GraphQLObjectType, GraphQLOutputType, GraphQLResolveInfo
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.executor import invalid_return_type_error, to_nodes
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, Undefined, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE as CAST

from graph.field_plans import CONVERT, LEAF, LIST, OBJECT, Completion, Planner, Step

# Types whose instances are never awaitable (Strawberry's optimized check skips them too).
NEVER_AWAITABLE = frozenset({type(None), bool, int, float, str, bytes, list, tuple, dict})
# Argument values no resolver can change.
IMMUTABLE = frozenset({type(None), bool, int, float, str})
# Leaf values that are neither null, an exception nor awaitable (no `__await__`, no instance
# `__dict__`): completed without asking `is_awaitable`.
INERT = NEVER_AWAITABLE - {type(None)} | {datetime, date, time, Decimal}


# `Path(prev, key, typename)` without the Python-level `__new__` of the named tuple.
PATH = tuple.__new__

# Per class: whether `is_awaitable(value)` is just "`__await__` in the instance's __dict__".
PLAIN_CLASSES: dict[type, bool] = {}
NOT_PLAIN = ("__await__", "__getattr__", "__getattribute__", "__class__")


def _is_plain_class(kind: type) -> bool:
    """A Python class with instance dicts, no `__await__` and no custom attribute lookup
    (Strawberry's types): `hasattr(value, "__await__")` can only find an instance attribute,
    and neither coroutine nor generator checks can hold."""
    return (
        kind.__dictoffset__ != 0
        and not issubclass(kind, CoroutineType | GeneratorType)
        and not any(name in vars(base) for base in kind.__mro__[:-1] for name in NOT_PLAIN)
    )


class FastExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor with planned fields resolved and completed inline."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        # A middleware (an extension's `resolve` hook) must see every field: no plans then.
        self._planned = manager is None or not manager.middlewares
        self._planner = Planner(self.schema)
        self._plans: dict[int, tuple[GroupedFieldSet, GraphQLObjectType, list[Step]]] = {}

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        if position_context is not None or not self._planned:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        steps = self._steps(parent_type, grouped_field_set)
        return self._execute_steps(steps, parent_type, source_value, path)

    def _steps(self, parent_type: GraphQLObjectType, grouped: GroupedFieldSet) -> list[Step]:
        """The plan of a grouped field set, made once per request."""
        plan = self._plans.get(id(grouped))
        if plan is None or plan[1] is not parent_type:
            steps = self._planner.steps(parent_type, grouped)
            plan = self._plans[id(grouped)] = (grouped, parent_type, steps)
        return plan[2]

    def _subfields(self, step: Step, object_type: GraphQLObjectType) -> tuple[Any, Any, Any]:
        """(grouped field set, new defer usages, steps or None) of the objects of `step`.

        `collect_subfields` once per step; the steps when they can run directly.
        """
        subfields = step.subfields
        if subfields is None:
            grouped, new_defer_usages, _ = self.collect_subfields(object_type, step.details)
            direct = self._planned and not new_defer_usages
            steps = self._steps(object_type, grouped) if direct else None
            subfields = step.subfields = (grouped, new_defer_usages, steps)
        return subfields  # type: ignore[no-any-return]

    def _execute_steps(
        self,
        steps: list[Step],
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
    ) -> Any:
        """`execute_fields` along a plan."""
        results: dict[str, Any] = {}
        awaitable_fields: list[str] | None = None  # made when the first one comes
        is_awaitable = self.is_awaitable
        inert, never_awaitable = INERT, NEVER_AWAITABLE
        try:
            for step in steps:
                if step.leaf:
                    # A leaf read directly: its value completed here unless it is null, an
                    # exception or awaitable (then as any read field).
                    settled = True
                    try:
                        value = step.read(source_value)  # type: ignore[misc]
                        if type(value) in inert:
                            result = step.coerce(value)  # type: ignore[misc]
                            if result is None or result is Undefined:
                                result = self.complete_leaf_value(step.leaf_type, value)
                            if type(result) in never_awaitable:
                                results[step.name] = result
                                continue
                        else:
                            settled = False
                    except Exception as raw_error:
                        self.handle_field_error(
                            raw_error,
                            step.return_type,
                            step.details,
                            Path(path, step.name, parent_type.name),
                        )
                        result = None
                    if not settled:
                        field_path = PATH(Path, (path, step.name, parent_type.name))
                        result = self._resolved(step, parent_type, value, field_path)
                elif step.object_read:
                    # An object read directly (an edge's node, a connection's pageInfo).
                    result = self._execute_object_read(step, parent_type, source_value, path)
                elif step.read is not None:
                    result = self._execute_read(step, parent_type, source_value, path)
                else:
                    field_path = PATH(Path, (path, step.name, parent_type.name))
                    if step.call is not None:
                        result = self._execute_call(step, parent_type, source_value, field_path)
                    else:
                        result = self.execute_field(
                            parent_type, source_value, step.details, field_path, None
                        )
                        if result is Undefined:
                            continue
                results[step.name] = result
                if type(result) not in never_awaitable and is_awaitable(result):
                    if awaitable_fields is None:
                        awaitable_fields = [step.name]
                    else:
                        awaitable_fields.append(step.name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return self._gather_fields(results, awaitable_fields)

    async def _gather_fields(
        self, results: dict[str, Any], awaitable_fields: list[str]
    ) -> dict[str, Any]:
        """The rest of `execute_fields`: the awaitable results awaited together."""
        if len(awaitable_fields) == 1:
            field = awaitable_fields[0]
            results[field] = await results[field]
        else:
            awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
            results.update(zip(awaitable_fields, awaited, strict=True))
        return results

    # ---------------------------------------------------------------- resolving a field

    def _execute_object_read(
        self, step: Step, parent_type: GraphQLObjectType, source: Any, path: Path | None
    ) -> Any:
        """`execute_field` for an object read directly."""
        field_path = PATH(Path, (path, step.name, parent_type.name))
        try:
            value = step.read(source)  # type: ignore[misc]
            if PLAIN_CLASSES.get(type(value)) and "__await__" not in value.__dict__:
                awaitable = False  # the usual case, answered without a call
            else:
                awaitable = self._may_await(value)
            if not awaitable:
                result = self._complete_object(step.complete, step, parent_type, value, field_path)  # type: ignore[arg-type]
                if type(result) not in NEVER_AWAITABLE and self.is_awaitable(result):
                    return self._await_completed(result, step.return_type, step.details, field_path)
                return result
        except Exception as raw_error:
            self.handle_field_error(raw_error, step.return_type, step.details, field_path)
            return None
        return self._complete_awaited(step, parent_type, value, field_path, None)

    def _execute_read(
        self, step: Step, parent_type: GraphQLObjectType, source: Any, path: Path | None
    ) -> Any:
        """`execute_field` for a field read directly (its path is built only when needed)."""
        try:
            value = step.read(source)  # type: ignore[misc]
            awaitable = self._may_await(value)
            if not awaitable and step.leaf:
                return self._complete_leaf(step.complete, step, parent_type, value)  # type: ignore[arg-type]
        except Exception as raw_error:
            self.handle_field_error(
                raw_error, step.return_type, step.details, Path(path, step.name, parent_type.name)
            )
            return None
        field_path = PATH(Path, (path, step.name, parent_type.name))
        if awaitable:
            return self._complete_awaited(step, parent_type, value, field_path, None)
        return self._settled(step, parent_type, value, field_path, None)

    def _execute_call(
        self, step: Step, parent_type: GraphQLObjectType, source: Any, path: Path
    ) -> Any:
        """`execute_field` with Strawberry's resolver called directly (see field_plans)."""
        field = step.field
        if step.nodes is None:
            step.nodes = to_nodes(step.details)
        info = self.build_resolve_info(field, step.nodes, parent_type, path)  # type: ignore[arg-type]
        try:
            args = step.arguments
            if args is None:
                first = step.details[0]
                args = (
                    get_argument_values(
                        field,  # type: ignore[arg-type]
                        first.node,
                        self.variable_values,
                        first.fragment_variable_values,
                        self.hide_suggestions,
                    )
                    if field.args or first.node.arguments  # type: ignore[union-attr]
                    else {}
                )
                # The same for every source in this operation: kept when nothing in it could
                # be changed by a resolver (each gets its own keyword arguments anyway).
                if all(type(value) in IMMUTABLE for value in args.values()):
                    step.arguments = args
            value = step.call(source, info, args)  # type: ignore[misc]
            if value is CONVERT:  # an argument needs Strawberry's conversion
                value = field.resolve(source, info, **args)  # type: ignore[union-attr,misc]
        except Exception as raw_error:
            self.handle_field_error(raw_error, step.return_type, step.details, path)
            return None
        return self._resolved(step, parent_type, value, path, info)

    def _resolved(
        self,
        step: Step,
        parent_type: GraphQLObjectType,
        value: Any,
        path: Path,
        info: GraphQLResolveInfo | None = None,
    ) -> Any:
        """The rest of `execute_field` once the resolver returned `value`."""
        try:
            awaitable = self._may_await(value)
        except Exception as raw_error:
            self.handle_field_error(raw_error, step.return_type, step.details, path)
            return None
        if awaitable:
            return self._complete_awaited(step, parent_type, value, path, info)
        return self._settled(step, parent_type, value, path, info)

    def _settled(
        self,
        step: Step,
        parent_type: GraphQLObjectType,
        value: Any,
        path: Path,
        info: GraphQLResolveInfo | None,
    ) -> Any:
        """`_resolved` for a value that is not awaitable."""
        try:
            completed = self._complete(step, parent_type, value, path, info)
            if type(completed) not in NEVER_AWAITABLE and self.is_awaitable(completed):
                return self._await_completed(completed, step.return_type, step.details, path)
            return completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, step.return_type, step.details, path)
            return None

    async def _complete_awaited(
        self,
        step: Step,
        parent_type: GraphQLObjectType,
        value: Any,
        path: Path,
        info: GraphQLResolveInfo | None,
    ) -> Any:
        """`complete_awaitable_value`."""
        try:
            resolved = await self.with_abort_signal(value)
            completed = self._complete(step, parent_type, resolved, path, info)
            if self.is_awaitable(completed):
                completed = await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, step.return_type, step.details, path)
            completed = None
        return completed

    async def _await_completed(
        self,
        completed: Awaitable[Any],
        return_type: GraphQLOutputType,
        details: FieldDetailsList,
        path: Path,
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, details, path)
            return None

    def _may_await(self, value: Any) -> bool:
        """`is_awaitable(value)`, answered from the value's class where it can be."""
        kind = type(value)
        if kind in NEVER_AWAITABLE:
            return False
        plain = PLAIN_CLASSES.get(kind)
        if plain is None:
            plain = PLAIN_CLASSES[kind] = _is_plain_class(kind)
        if plain:
            return "__await__" in value.__dict__
        return self.is_awaitable(value)

    def _info(self, step: Step, parent_type: GraphQLObjectType, path: Path) -> GraphQLResolveInfo:
        return self.build_resolve_info(step.field, to_nodes(step.details), parent_type, path)  # type: ignore[arg-type]

    # --------------------------------------------------------------- completing a value

    def _complete(
        self,
        step: Step,
        parent_type: GraphQLObjectType,
        value: Any,
        path: Path,
        info: GraphQLResolveInfo | None,
    ) -> Any:
        """`complete_value` of a resolved value, inline where the plan allows."""
        completion: Completion = step.complete  # type: ignore[assignment]
        kind = completion.kind
        if kind == LEAF:
            return self._complete_leaf(completion, step, parent_type, value)
        if kind == OBJECT:
            return self._complete_object(completion, step, parent_type, value, path)
        if kind == LIST and (type(value) is list or type(value) is tuple):
            return self._complete_list(completion, step, parent_type, value, path)
        if info is None:
            info = self._info(step, parent_type, path)
        return self.complete_value(step.return_type, step.details, info, path, value, None)

    @staticmethod
    def _null_or_error(completion: Completion, step: Step, parent_type: Any, value: Any) -> None:
        """For a value that is an exception or null: raise as `complete_value` would."""
        if isinstance(value, Exception):
            raise value
        if completion.non_null:
            raise TypeError(
                f"Cannot return null for non-nullable field {parent_type}.{step.field_name}."
            )

    def _complete_leaf(
        self, completion: Completion, step: Step, parent_type: GraphQLObjectType, value: Any
    ) -> Any:
        if value is None or value is Undefined or isinstance(value, Exception):
            self._null_or_error(completion, step, parent_type, value)
            return None
        coerced = completion.coerce(value)  # type: ignore[misc]
        if coerced is None or coerced is Undefined:
            return self.complete_leaf_value(completion.leaf_type, value)  # raises its TypeError
        return coerced

    def _complete_object(
        self,
        completion: Completion,
        step: Step,
        parent_type: GraphQLObjectType,
        value: Any,
        path: Path,
    ) -> Any:
        if value is None or value is Undefined or isinstance(value, Exception):
            self._null_or_error(completion, step, parent_type, value)
            return None
        object_type: GraphQLObjectType = completion.object_type  # type: ignore[assignment]
        check = completion.type_check
        if (
            check is not None
            and not (type(value) is completion.own_class and CAST not in value.__dict__)
            and not check(value, None)
        ):
            raise invalid_return_type_error(object_type, value, step.details)
        # collect_and_execute_subfields, with the collected subfields kept on the step.
        grouped, new_defer_usages, steps = step.subfields or self._subfields(step, object_type)
        if steps is None:
            return self.execute_collected_subfields(
                object_type, value, path, grouped, new_defer_usages, None
            )
        return self._execute_steps(steps, object_type, value, path)

    def _complete_list(
        self,
        completion: Completion,
        step: Step,
        parent_type: GraphQLObjectType,
        items: list[Any] | tuple[Any, ...],
        path: Path,
    ) -> Any:
        """`complete_iterable_value` for a list (not streamed) of leaves or objects."""
        item: Completion = completion.item  # type: ignore[assignment]
        list_type = step.return_type.of_type if completion.non_null else step.return_type
        item_type = list_type.of_type
        completed_results: list[Any] = []
        append = completed_results.append
        awaitable_indices: list[int] = []
        details = step.details
        is_awaitable = self.is_awaitable
        is_leaf = item.kind == LEAF
        if not is_leaf:  # as _complete_object does for each item
            object_type: GraphQLObjectType = item.object_type  # type: ignore[assignment]
            check, own_class = item.type_check, item.own_class
            grouped, new_defer_usages, steps = self._subfields(step, object_type)
            # An edge of a connection, `edges { node { ... } }`: its one field read here.
            edge = steps[0] if steps is not None and len(steps) == 1 else None
            if edge is not None and not edge.object_read:
                edge = None
        try:
            for index, value in enumerate(items):
                item_path = PATH(Path, (path, index, None))
                if not (
                    PLAIN_CLASSES.get(type(value)) and "__await__" not in value.__dict__
                ) and self._may_await(value):
                    info = self._info(step, parent_type, path)
                    append(
                        self.complete_awaitable_list_item_value(
                            value, item_type, details, info, item_path, None
                        )
                    )
                    awaitable_indices.append(index)
                    continue
                try:
                    if is_leaf:
                        append(self._complete_leaf(item, step, parent_type, value))
                        continue
                    if value is None or value is Undefined or isinstance(value, Exception):
                        self._null_or_error(item, step, parent_type, value)
                        append(None)
                        continue
                    if (
                        check is not None
                        and not (type(value) is own_class and CAST not in value.__dict__)
                        and not check(value, None)
                    ):
                        raise invalid_return_type_error(object_type, value, details)
                    if edge is not None:  # _execute_steps for a single object read
                        node = self._execute_object_read(edge, object_type, value, item_path)
                        completed = (
                            {edge.name: node}
                            if type(node) in NEVER_AWAITABLE or not is_awaitable(node)
                            else self._gather_fields({edge.name: node}, [edge.name])
                        )
                    elif steps is None:
                        completed = self.execute_collected_subfields(
                            object_type, value, item_path, grouped, new_defer_usages, None
                        )
                    else:
                        completed = self._execute_steps(steps, object_type, value, item_path)
                    if type(completed) is not dict and is_awaitable(completed):
                        append(self._await_completed(completed, item_type, details, item_path))
                        awaitable_indices.append(index)
                    else:
                        append(completed)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, item_type, details, item_path)
                    append(None)
        except Exception:
            pending = [completed_results[index] for index in awaitable_indices]
            if pending:
                self.settle_in_background(pending)
            raise
        if not awaitable_indices:
            return completed_results
        return self._gather_items(completed_results, awaitable_indices)

    @staticmethod
    async def _gather_items(
        completed_results: list[Any], awaitable_indices: list[int]
    ) -> list[Any]:
        """The rest of `_complete_list`: the awaitable items awaited together."""
        if len(awaitable_indices) == 1:
            index = awaitable_indices[0]
            completed_results[index] = await completed_results[index]
        else:
            awaited = await gather_with_cancel(
                *(completed_results[index] for index in awaitable_indices)
            )
            for index, result in zip(awaitable_indices, awaited, strict=True):
                completed_results[index] = result
        return completed_results
