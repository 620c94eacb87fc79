"""The search attributes peersync sets, so operators can filter its workflows in the Temporal UI."""

from temporalio.common import SearchAttributeKey

VALIDATOR = SearchAttributeKey.for_keyword("PeersyncValidator")
CONSUMER = SearchAttributeKey.for_keyword("PeersyncConsumer")
CLUSTER = SearchAttributeKey.for_keyword("PeersyncCluster")
PHASE = SearchAttributeKey.for_keyword("PeersyncPhase")

ALL_KEYS = (VALIDATOR, CONSUMER, CLUSTER, PHASE)
