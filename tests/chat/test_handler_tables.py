"""The hub's dispatch tables cover exactly the frames the protocol's schemas accept."""

from chatserver.chat.operator import OPERATOR_HANDLERS
from chatserver.chat.visitor import VISITOR_HANDLERS
from chatserver.protocol import OPERATOR_FRAMES, VISITOR_FRAMES


def test_every_visitor_frame_has_exactly_one_handler() -> None:
    # hello opens the connection (Hub.visitor_hello); every other type is dispatched.
    assert set(VISITOR_HANDLERS) == set(VISITOR_FRAMES) - {"hello"}


def test_every_operator_frame_has_exactly_one_handler() -> None:
    assert set(OPERATOR_HANDLERS) == set(OPERATOR_FRAMES) - {"hello"}


def test_handlers_are_coroutine_functions() -> None:
    import inspect

    for table in (VISITOR_HANDLERS, OPERATOR_HANDLERS):
        for kind, handler in table.items():
            assert inspect.iscoroutinefunction(handler), kind
