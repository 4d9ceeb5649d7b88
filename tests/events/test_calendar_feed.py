"""The calendar feed's rendering, read back by `icalendar` as a subscribed calendar would."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from icalendar import Calendar

from townsquare.events.calendar_feed import (
    CANCELLED_KEPT_FOR,
    FeedEntry,
    is_listed,
    render_calendar,
    signup_uid,
)

MODIFIED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _entry(**changes: object) -> FeedEntry:
    entry = FeedEntry(
        uid=signup_uid("5a3c", "example.org"),
        sequence=0,
        summary="Bar — Summer festival",
        starts_at=datetime(2026, 6, 1, 14, 0, tzinfo=UTC),
        ends_at=datetime(2026, 6, 1, 18, 0, tzinfo=UTC),
        timezone="Europe/Berlin",
        location="Town hall, Room 1; back door",
        description="Bring gloves.\r\nAsk for Ana.",
        cancelled=False,
        modified_at=MODIFIED,
    )
    return replace(entry, **changes)  # type: ignore[arg-type]


def _parse(raw: bytes) -> Calendar:
    calendar = Calendar.from_ical(raw)
    assert isinstance(calendar, Calendar)
    return calendar


def _utc_by_vtimezone(calendar: Calendar, prop: str) -> datetime:
    """The instant of `prop` as a client that only trusts the feed's own VTIMEZONE reads it
    (not its own copy of the zone named by TZID)."""
    event = calendar.events[0]
    value: datetime = event.decoded(prop)
    if "TZID" not in event[prop].params:
        return value.astimezone(UTC)
    (zone,) = [tz for tz in calendar.timezones if tz["TZID"] == event[prop].params["TZID"]]
    return value.replace(tzinfo=zone.to_tz(lookup_tzid=False)).astimezone(UTC)


class TestRendering:
    def test_fields_read_back_one_by_one(self) -> None:
        calendar = _parse(render_calendar([_entry(sequence=3)], name="Ana's shifts"))

        assert calendar["VERSION"] == "2.0"
        assert calendar["PRODID"]
        assert calendar["X-WR-CALNAME"] == "Ana's shifts"
        (event,) = calendar.events
        assert event["UID"] == "signup-5a3c@example.org"
        assert event["SEQUENCE"] == 3
        assert event["SUMMARY"] == "Bar — Summer festival"
        assert event["LOCATION"] == "Town hall, Room 1; back door"
        assert event["DESCRIPTION"] == "Bring gloves.\nAsk for Ana."
        assert event["STATUS"] == "CONFIRMED"
        assert event.decoded("DTSTAMP") == MODIFIED
        assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
        assert event.decoded("DTSTART") == datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
        assert event.decoded("DTSTART").replace(tzinfo=None) == datetime(2026, 6, 1, 16, 0)
        assert event.decoded("DTEND").replace(tzinfo=None) == datetime(2026, 6, 1, 20, 0)

    def test_one_vtimezone_per_zone_used_and_lines_end_in_crlf(self) -> None:
        entries = [
            _entry(uid="a@x"),
            _entry(uid="b@x", timezone="America/New_York"),
            _entry(uid="c@x"),
        ]
        raw = render_calendar(entries, name="Shifts")

        calendar = _parse(raw)
        assert sorted(str(tz["TZID"]) for tz in calendar.timezones) == [
            "America/New_York",
            "Europe/Berlin",
        ]
        assert [str(event["UID"]) for event in calendar.events] == ["a@x", "b@x", "c@x"]
        assert calendar.get_missing_tzids() == set()
        assert raw.count(b"\r\n") == raw.count(b"\n")
        assert all(len(line) <= 75 for line in raw.split(b"\r\n"))

    def test_the_same_entries_give_the_same_bytes(self) -> None:
        assert render_calendar([_entry()], name="S") == render_calendar([_entry()], name="S")

    def test_cancelled_entry_is_marked(self) -> None:
        calendar = _parse(render_calendar([_entry(cancelled=True, sequence=2)], name="S"))

        (event,) = calendar.events
        assert event["STATUS"] == "CANCELLED"
        assert event["SEQUENCE"] == 2
        assert event["TRANSP"] == "TRANSPARENT"

    def test_text_cannot_break_out_of_its_property(self) -> None:
        hostile = "Bar\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:evil"
        calendar = _parse(
            render_calendar([_entry(summary=hostile, location=hostile)], name=hostile)
        )

        (event,) = calendar.events
        assert event["UID"] == "signup-5a3c@example.org"
        assert event["SUMMARY"] == "Bar END:VEVENT BEGIN:VEVENT UID:evil"
        assert "\n" not in str(calendar["X-WR-CALNAME"])

    def test_unknown_zone_falls_back_to_utc_at_the_same_instant(self) -> None:
        calendar = _parse(render_calendar([_entry(timezone="Mars/Olympus_Mons")], name="S"))

        (event,) = calendar.events
        assert event.to_ical().count(b"DTSTART:20260601T140000Z") == 1
        assert event.decoded("DTSTART") == datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
        assert calendar.timezones == []

    def test_empty_feed_is_a_valid_calendar(self) -> None:
        calendar = _parse(render_calendar([], name="S"))

        assert calendar.events == []
        assert calendar["VERSION"] == "2.0"


class TestDaylightSaving:
    """Europe/Berlin: CET (+01:00) to CEST (+02:00) at 01:00 UTC on 29 March 2026, back at
    01:00 UTC on 25 October 2026."""

    def test_wall_clock_and_instant_right_on_both_sides_of_the_spring_change(self) -> None:
        entry = _entry(
            starts_at=datetime(2026, 3, 29, 0, 30, tzinfo=UTC),  # 01:30 CET
            ends_at=datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # 03:30 CEST
        )
        calendar = _parse(render_calendar([entry], name="S"))

        event = calendar.events[0]
        assert event.decoded("DTSTART").replace(tzinfo=None) == datetime(2026, 3, 29, 1, 30)
        assert event.decoded("DTEND").replace(tzinfo=None) == datetime(2026, 3, 29, 3, 30)
        elapsed = event.decoded("DTEND").astimezone(UTC) - event.decoded("DTSTART").astimezone(UTC)
        assert elapsed == timedelta(hours=1)
        assert _utc_by_vtimezone(calendar, "DTSTART") == entry.starts_at
        assert _utc_by_vtimezone(calendar, "DTEND") == entry.ends_at

    def test_wall_clock_and_instant_right_on_both_sides_of_the_autumn_change(self) -> None:
        entry = _entry(
            starts_at=datetime(2026, 10, 24, 22, 0, tzinfo=UTC),  # 00:00 CEST
            ends_at=datetime(2026, 10, 25, 5, 0, tzinfo=UTC),  # 06:00 CET
        )
        calendar = _parse(render_calendar([entry], name="S"))

        event = calendar.events[0]
        assert event.decoded("DTSTART").replace(tzinfo=None) == datetime(2026, 10, 25, 0, 0)
        assert event.decoded("DTEND").replace(tzinfo=None) == datetime(2026, 10, 25, 6, 0)
        elapsed = event.decoded("DTEND").astimezone(UTC) - event.decoded("DTSTART").astimezone(UTC)
        assert elapsed == timedelta(hours=7)
        assert _utc_by_vtimezone(calendar, "DTSTART") == entry.starts_at
        assert _utc_by_vtimezone(calendar, "DTEND") == entry.ends_at

    def test_the_repeated_hour_of_autumn_keeps_its_instant(self) -> None:
        # 02:30 happens twice that night; RFC 5545 reads a local 02:30 as the first (CEST)
        # one, so the second (01:30 UTC, CET) must come out as that instant all the same.
        entry = _entry(
            starts_at=datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST
            ends_at=datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # 02:30 CET
        )
        calendar = _parse(render_calendar([entry], name="S"))

        event = calendar.events[0]
        assert event.decoded("DTSTART").astimezone(UTC) == entry.starts_at
        assert event.decoded("DTEND").astimezone(UTC) == entry.ends_at
        assert _utc_by_vtimezone(calendar, "DTSTART") == entry.starts_at
        assert _utc_by_vtimezone(calendar, "DTEND") == entry.ends_at


class TestListing:
    def test_cancelled_entries_stay_for_thirty_days(self) -> None:
        now = datetime(2026, 6, 1, tzinfo=UTC)

        assert is_listed(None, now)
        assert is_listed(now - CANCELLED_KEPT_FOR, now)
        assert not is_listed(now - CANCELLED_KEPT_FOR - timedelta(seconds=1), now)
        assert timedelta(days=30) == CANCELLED_KEPT_FOR
