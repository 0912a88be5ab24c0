"""A local OpenLDAP directory with the SUPANN schema, for the demo, the tests and the benchmarks."""

from umacct.localdir.population import generate_people, sample_password
from umacct.localdir.profiles import PROFILES
from umacct.localdir.replication import (
    pair_config_dict,
    start_replicated_pair,
    wait_until_in_sync,
)
from umacct.localdir.slapd import LocalDirectory, attach, start

__all__ = [
    "PROFILES",
    "LocalDirectory",
    "attach",
    "generate_people",
    "pair_config_dict",
    "sample_password",
    "start",
    "start_replicated_pair",
    "wait_until_in_sync",
]
