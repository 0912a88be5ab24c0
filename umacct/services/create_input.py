"""What ``create`` is given: one person typed on the command line, or an intake file, validated."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from umacct.config import Config
from umacct.errors import InvalidInputError
from umacct.identifiers import PersonName
from umacct.intake import Intake, IntakeRow, check_external_id, read_intake, validate_email


def new_person(
    config: Config,
    *,
    given_name: str,
    surname: str,
    profile: str,
    personal_email: str,
    end_of_activity: date | None = None,
    external_id: str | None = None,
    arrival: date | None = None,
) -> IntakeRow:
    """Validate one person typed on the command line, as an intake row (line 0).

    Raises InvalidInputError naming the option at fault.
    """
    name = PersonName(given_name, surname)
    key = profile_key(config, profile)
    try:
        email = validate_email(personal_email)
    except InvalidInputError as error:
        raise InvalidInputError(f"--personal-email: {error.message}") from None
    if external_id is not None:
        try:
            external_id = check_external_id(external_id.strip())
        except InvalidInputError as error:
            raise InvalidInputError(f"external id {error.message}") from None
    if end_of_activity and arrival and end_of_activity < arrival:
        raise InvalidInputError(
            f"--end-of-activity {end_of_activity} is before --arrival {arrival}"
        )
    return IntakeRow(0, name, key, email, end_of_activity, external_id or None, arrival)


def profile_key(config: Config, text: str) -> str:
    """The configured profile named ``text`` (case-insensitive); InvalidInputError otherwise."""
    folded = {key.casefold(): key for key in config.profiles}
    found = folded.get(text.strip().casefold())
    if found is None:
        known = ", ".join(sorted(config.profiles))
        raise InvalidInputError(f"unknown profile {text!r} (configured: {known})")
    return found


def read_intake_file(config: Config, path: Path) -> Intake:
    """Read and validate an intake file: every row is checked before anything is created."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return read_intake(data, profiles=config.profiles)
    except InvalidInputError as error:
        raise InvalidInputError(f"{path}: {error.message}") from None
