"""The hardware fakes behave like the devices they stand in for."""

from __future__ import annotations

from controller.clock import FakeClock
from controller.events import CallHeld, CallPressed, NibpCompleted, NibpFailed
from hw.fake import FakeAnnunciator, FakeCallButton, FakeLighting, FakeNibp


def test_call_button_reports_presses_and_holds_and_keeps_the_lamp() -> None:
    got: list[object] = []
    button = FakeCallButton(got.append)
    button.press()
    button.hold()
    button.set_lamp("pulse")
    button.set_lamp("steady")
    assert got == [CallPressed(), CallHeld()]
    assert button.lamp == "steady" and button.lamp_history == ["pulse", "steady"]


def test_nibp_measures_only_when_asked_and_reports_map() -> None:
    got: list[object] = []
    clock = FakeClock()
    nibp = FakeNibp(got.append, clock)
    nibp.start_measurement()
    assert nibp.measuring and nibp.started == 1
    reading = nibp.finish(120, 81, 70)
    assert not nibp.measuring
    assert reading.map == 94 and reading.ts == clock.now()
    nibp.start_measurement()
    nibp.fail("leak")
    assert got == [NibpCompleted(reading), NibpFailed("leak")]


def test_lighting_and_annunciator_record_what_they_were_told() -> None:
    lights = FakeLighting()
    lights.set_scene("infusion", 0.05, (255, 140, 60), 60.0)
    assert lights.level == 0.05 and lights.calls[-1][0] == "infusion"
    buzzer = FakeAnnunciator()
    buzzer.annunciate("high")
    buzzer.annunciate("off")
    assert buzzer.pattern == "off" and buzzer.history == ["high", "off"]
