"""The entry of each new account of a ``create`` run, what every row shares worked out once.

An intake's rows mostly arrive the same day: their ``COMPTE`` and ``MAIL`` states, and the
values written for them, are the same for all but a few rows. They are built and checked
once per arrival day (``ResourceState.format`` refuses a state we may not write, and would
refuse it for every row alike); each entry still gets lists of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from umacct.config import ProfileConfig
from umacct.intake import IntakeRow
from umacct.policy import ResourceState
from umacct.services.arrivals import arrival_states
from umacct.services.lifecycle import end_of_activity_value
from umacct.services.runtime import Runtime

OBJECT_CLASSES = ("inetOrgPerson", "eduPerson", "supannPerson")

_Arrival = tuple[tuple[ResourceState, ...], tuple[str, ...], tuple[str, ...]]
"""The states of a new account arriving on a day, their dated values and their short ones."""


class NewEntries:
    """Builds the entries of one run's new accounts, created ``today``."""

    def __init__(self, runtime: Runtime, today: date) -> None:
        self.runtime = runtime
        self.today = today
        self._arrivals: dict[date | None, _Arrival] = {}

    def states(self, arrival: date | None) -> tuple[ResourceState, ...]:
        """``arrival_states(today, arrival)``."""
        return self._arrival(arrival)[0]

    def _arrival(self, arrival: date | None) -> _Arrival:
        known = self._arrivals.get(arrival)
        if known is None:
            states = arrival_states(self.today, arrival)
            known = (
                states,
                tuple(state.format() for state in states),
                tuple(state.short().format() for state in states),
            )
            self._arrivals[arrival] = known
        return known

    def attributes(
        self,
        row: IntakeRow,
        profile: ProfileConfig,
        uid: str,
        identifier: str,
        states: Sequence[ResourceState],
    ) -> dict[str, list[str]]:
        """The entry of ``row``'s new account, in ``states``."""
        config = self.runtime.config
        names = config.attributes
        full_name = f"{row.name.given_name} {row.name.surname}"
        cached = self._arrival(row.arrival)
        if states is cached[0]:  # the states of ``states()``: their values are the ones built
            state_dates, statuses = list(cached[1]), list(cached[2])
        else:
            state_dates = [state.format() for state in states]
            statuses = [state.short().format() for state in states]
        attributes: dict[str, list[str]] = {
            "objectClass": list(OBJECT_CLASSES),
            "uid": [uid],
            "mail": [identifier],
            "cn": [full_name],
            "sn": [row.name.surname],
            "givenName": [row.name.given_name],
            "displayName": [full_name],
            names.principal_name: [identifier],
            config.directory.profile_attribute: [row.profile],
            names.affiliation: list(profile.affiliations),
            names.primary_affiliation: list(profile.affiliations[:1]),
            names.personal_mail: [row.personal_email],
            names.state_date: state_dates,
            names.state: statuses,
        }
        if row.external_id:
            attributes[profile.external_id_attribute] = [row.external_id]
        if row.end_of_activity:
            attributes[profile.end_date_attribute] = [
                end_of_activity_value(self.runtime, row.end_of_activity)
            ]
        return {name: values for name, values in attributes.items() if values}
