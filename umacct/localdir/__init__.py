"""A local OpenLDAP directory with the SUPANN schema, for the demo, the tests and the benchmarks."""

from umacct.localdir.population import generate_people, sample_password
from umacct.localdir.profiles import PROFILES
from umacct.localdir.slapd import LocalDirectory, attach, start

__all__ = ["PROFILES", "LocalDirectory", "attach", "generate_people", "sample_password", "start"]
