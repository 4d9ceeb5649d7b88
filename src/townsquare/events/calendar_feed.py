"""A person's shifts as an RFC 5545 calendar (`GET /me/shifts.ics`), made with `icalendar`.

Pure: it turns plain `FeedEntry` values into the bytes of a VCALENDAR and reads nothing.
Each entry is one signup: its `UID` never changes (calendars match updates by it), its
`SEQUENCE` grows whenever the shift moves or the signup or shift is cancelled, and a
cancelled one stays in the feed with `STATUS:CANCELLED` for a while, so that subscribed
calendars remove it instead of keeping a stale copy. Times are written in the event's
own time zone (`DTSTART;TZID=Europe/Berlin:...`) with a VTIMEZONE for each zone used,
so a calendar shows a shift at the wall-clock time of the place where it happens, right
on both sides of a daylight-saving change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, Timezone, vDuration

PRODID = "-//Townsquare//Volunteer shifts//EN"
CANCELLED_KEPT_FOR = timedelta(days=30)
"""How long a cancelled shift or signup stays in the feed, marked STATUS:CANCELLED."""
REFRESH_INTERVAL = timedelta(hours=1)
"""What the feed suggests to its subscribers (REFRESH-INTERVAL, X-PUBLISHED-TTL)."""
MEDIA_TYPE = "text/calendar; charset=utf-8"
FALLBACK_TIMEZONE = "UTC"


@dataclass(frozen=True)
class FeedEntry:
    """One signup as the feed shows it. `starts_at`/`ends_at` are aware datetimes (any
    zone); `timezone` is the IANA name of the event's zone they are written in."""

    uid: str
    sequence: int
    summary: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    location: str
    description: str
    cancelled: bool
    modified_at: datetime
    url: str | None = None


def signup_uid(signup_id: object, domain: str) -> str:
    """The UID of a signup's calendar entry: globally unique and the same on every fetch."""
    return f"signup-{signup_id}@{domain}"


def is_listed(cancelled_at: datetime | None, now: datetime) -> bool:
    """Whether an entry cancelled at `cancelled_at` (None: not cancelled) is still shown."""
    return cancelled_at is None or now - cancelled_at <= CANCELLED_KEPT_FOR


def render_calendar(entries: Sequence[FeedEntry], *, name: str) -> bytes:
    """The VCALENDAR of `entries`, in their order, with one VTIMEZONE per zone used."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("name", _one_line(name))
    calendar.add("x-wr-calname", _one_line(name))
    calendar.add("refresh-interval", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH_INTERVAL))
    zones = {entry.timezone: _zone_name(entry.timezone) for entry in entries}
    events = [_vevent(entry, ZoneInfo(zones[entry.timezone])) for entry in entries]
    # Only zones a time is written in (UTC ones are written with a Z, and need none).
    used = {
        str(event[prop].params["TZID"])
        for event in events
        for prop in ("DTSTART", "DTEND")
        if "TZID" in event[prop].params
    }
    for tzid in sorted(used):
        spanned = _years_spanned(entry for entry in entries if zones[entry.timezone] == tzid)
        calendar.add_component(_vtimezone(tzid, *spanned))
    for event in events:
        calendar.add_component(event)
    return bytes(calendar.to_ical())


def _vevent(entry: FeedEntry, zone: ZoneInfo) -> Event:
    event = Event()
    event.add("uid", entry.uid)
    # Without a METHOD of scheduling, DTSTAMP is when the entry was last revised: the
    # same bytes on every fetch until something changes.
    event.add("dtstamp", entry.modified_at.astimezone(UTC))
    event.add("last-modified", entry.modified_at.astimezone(UTC))
    event.add("sequence", entry.sequence)
    event.add("dtstart", _wall_clock(entry.starts_at, zone))
    event.add("dtend", _wall_clock(entry.ends_at, zone))
    event.add("summary", _one_line(entry.summary))
    if entry.location:
        event.add("location", _one_line(entry.location))
    if entry.description:
        event.add("description", _text(entry.description))
    if entry.url:
        event.add("url", entry.url)
    event.add("status", "CANCELLED" if entry.cancelled else "CONFIRMED")
    event.add("transp", "TRANSPARENT" if entry.cancelled else "OPAQUE")
    return event


def _wall_clock(moment: datetime, zone: ZoneInfo) -> datetime:
    """`moment` in the event's zone, or in UTC when that local time is the second of the
    hour a daylight-saving end repeats: RFC 5545 reads a repeated local time as its first
    occurrence, so the second one can only be written in UTC."""
    local = moment.astimezone(zone)
    if local.fold and local.replace(fold=0).utcoffset() != local.utcoffset():
        return moment.astimezone(UTC)
    return local


def _zone_name(tzid: str) -> str:
    """The entry's zone if this system knows it, else UTC (times stay right, only the
    wall clock of the place is lost)."""
    try:
        ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError):
        return FALLBACK_TIMEZONE
    return tzid


def _years_spanned(entries: Iterable[FeedEntry]) -> tuple[int, int]:
    years = [
        moment.astimezone(UTC).year
        for entry in entries
        for moment in (entry.starts_at, entry.ends_at)
    ]
    return min(years), max(years)


@lru_cache(maxsize=256)
def _vtimezone_ical(tzid: str, first_year: int, last_year: int) -> bytes:
    # The rules of the years the entries fall in (plus a margin), not of 1970-2038: a
    # feed stays small, and every entry's offset is still stated.
    zone = Timezone.from_tzid(
        tzid, first_date=date(first_year - 1, 1, 1), last_date=date(last_year + 2, 1, 1)
    )
    return bytes(zone.to_ical())


def _vtimezone(tzid: str, first_year: int, last_year: int) -> Timezone:
    parsed = Timezone.from_ical(_vtimezone_ical(tzid, first_year, last_year))
    assert isinstance(parsed, Timezone)
    return parsed


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _text(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()
