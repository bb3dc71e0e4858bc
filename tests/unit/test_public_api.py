"""The public surface is a contract (ARCHITECTURE.md §3): these names must stay importable, and
each package's ``__all__`` must list exactly what it exports."""

from __future__ import annotations

import importlib
import inspect

import pytest

FRONT_DOOR = ["durable_function", "DurableContext", "AsyncDurableContext", "Duration", "StepConfig", "StepSemantics", "RetryPolicy",
              "CallbackConfig", "ChildConfig", "InvokeConfig", "WaitForConditionConfig", "ParallelConfig", "MapConfig",
              "CompletionConfig", "NestingType", "BatchResult", "LocalRuntime", "VirtualClock", "Agent", "AgentResult",
              "tool", "ToolError", "ask_human", "render", "step_context", "DurableError", "UsageError", "StepError",
              "NonDeterministicExecutionError", "CallbackError", "CallbackTimeoutError", "ChildContextError",
              "InvokeError", "WaitForConditionError", "SerializationError", "StepInterruptedError", "AgentError",
              "Budget", "BudgetExceededError", "DurableOperationError", "PromptError", "__version__"]

CONTRACT = {
    "duragent": FRONT_DOOR,
    "duragent.durable": ["durable_function", "DurableContext", "Duration", "StepConfig", "StepSemantics", "RetryPolicy",
                "CallbackConfig", "ParallelConfig", "MapConfig", "CompletionConfig", "NestingType", "BatchResult",
                "LocalRuntime", "InvokeConfig", "step_context", "NonDeterministicExecutionError"],
    "duragent.durable.aws": ["lambda_handler"],
    "duragent.agents": ["Agent", "AgentResult", "ask_human"],
    "duragent.tools": ["tool", "Tool"],
    "duragent.prompts": ["load", "render"],
}


@pytest.mark.parametrize("module_name", sorted(CONTRACT))
def test_the_contract_names_are_exported(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in CONTRACT[module_name] if not hasattr(module, name)]
    assert not missing, f"{module_name} lost public names {missing}"
    assert set(CONTRACT[module_name]) <= set(module.__all__)


@pytest.mark.parametrize("module_name", ["duragent", "duragent.durable", "duragent.agents", "duragent.tools",
                                         "duragent.prompts", "duragent.durable.aws"])
def test_all_lists_what_the_package_exports(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(set(module.__all__)) == sorted(module.__all__), "duplicates in __all__"
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ names {name!r}, which does not exist"


OPERATIONS = ("step", "wait", "create_callback", "wait_for_callback", "run_in_child_context", "parallel", "map",
              "wait_for_condition", "invoke", "now", "random", "uuid4", "patched")


def test_the_context_has_every_operation_of_the_contract() -> None:
    from duragent.durable import DurableContext

    for method in OPERATIONS:
        assert inspect.isfunction(getattr(DurableContext, method)), method


def test_the_async_context_awaits_every_operation_under_the_same_name() -> None:
    from duragent.durable import AsyncDurableContext

    for method in OPERATIONS:
        assert inspect.iscoroutinefunction(getattr(AsyncDurableContext, method)), method


def test_every_durable_exception_is_exported() -> None:
    from duragent import durable
    from duragent.durable import errors

    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, errors.DurableError) and c.__module__ == errors.__name__]
    public = {"DurableError", "UsageError", "NonDeterministicExecutionError", "DurableOperationError", "StepError",
              "StepInterruptedError", "ChildContextError", "CallbackError", "CallbackTimeoutError",
              "WaitForConditionError", "InvokeError", "SerializationError"}
    assert public <= {c.__name__ for c in classes}
    assert public <= set(durable.__all__)


def test_the_front_door_is_exactly_what_users_need_first() -> None:
    """The front door is pinned: adding to it is a decision, not an accident."""
    import duragent

    assert sorted(duragent.__all__) == sorted(FRONT_DOOR)


def test_front_door_names_are_the_subpackage_objects() -> None:
    import duragent
    from duragent import agents, durable, prompts, tools

    assert duragent.Agent is agents.Agent and duragent.tool is tools.tool and duragent.render is prompts.render
    assert duragent.durable_function is durable.durable_function and duragent.LocalRuntime is durable.LocalRuntime
