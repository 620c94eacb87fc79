"""Asking the RegistryWorkflow for its snapshot (and committing a change), workflow to workflow.

The ask is the `share` signal carrying a reply-to; the answer comes back as a `registry_answer` signal, so no
activity ever queries the registry to learn what to write, and the answer is in the asker's history. A
registry that does not exist answers for itself: the chain alone decides (EndpointSnapshot.registry False);
one that exists but does not answer is asked again, and after policies.REGISTRY_ANSWER the asker is told so.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core.contracts import EndpointSnapshot, RegistryAnswer, RegistryAsk
    from core.ids import registry_id
    from workflows import policies


class RegistryUnanswered(Exception):
    """The registry exists but did not answer within the budget."""


def _not_found(exc: BaseException) -> bool:
    # sdk-core fails the signal command with "Unable to signal external workflow because it was not found".
    return "not found" in str(exc).lower()


async def ask_registry(
    cluster_id: str,
    answers: dict[str, RegistryAnswer],
    ask: RegistryAsk,
    budget: policies.ReplyWait = policies.REGISTRY_ANSWER,
) -> RegistryAnswer:
    """Send `ask`, wait for `answers[ask.request_id]` (filled by the asker's `registry_answer` signal)."""
    registry = workflow.get_external_workflow_handle(registry_id(cluster_id))
    started, asked = workflow.now(), 0
    while True:
        try:
            await registry.signal("share", ask)
        except Exception as exc:
            if not _not_found(exc):
                raise
            # No registry runs (none yet, or it was terminated): no pin exists to keep, and no commit to check.
            return RegistryAnswer(request_id=ask.request_id, snapshot=EndpointSnapshot(registry=False))
        asked += 1
        try:
            await workflow.wait_condition(
                lambda: ask.request_id in answers,
                timeout=budget.interval(asked),
                timeout_summary="ask the registry again",
            )
            return answers.pop(ask.request_id)
        except TimeoutError:
            if workflow.now() - started >= budget.total:
                raise RegistryUnanswered(
                    f"{registry_id(cluster_id)} did not answer within {budget.total} (asked {asked}x)"
                ) from None
