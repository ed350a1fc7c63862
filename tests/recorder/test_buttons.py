"""Buttons and the status light on gpiozero's MockFactory: real Button/LED objects, mock pins."""

from __future__ import annotations

import threading
import time

import pytest
from gpiozero import LED, PWMLED
from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance.config import Gpio
from appliance.recorder.buttons import FLASHES, IDLE_LEVEL, PATTERNS, ButtonPanel, StatusLight, make_light

RECORD, MARK, LED_PIN = 17, 27, 18


class FakeClock:
    """Time that moves only when the test says so (debouncing is judged against it)."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Panel:
    """A ButtonPanel wired to a pretend recorder that records the commands it gets."""

    def __init__(self, gpio: Gpio, state: str = "idle"):
        self.factory = MockFactory()
        self.clock = FakeClock()
        self.state = state
        self.commands: list[str] = []
        self.got_command = threading.Event()
        self.panel = ButtonPanel(gpio, lambda: self.state, self._command,
                                 pin_factory=self.factory, clock=self.clock)

    def _command(self, name: str) -> None:
        self.commands.append(name)
        self.got_command.set()

    def press(self, pin: int = RECORD) -> None:
        self.factory.pin(pin).drive_low()

    def release(self, pin: int = RECORD) -> None:
        self.factory.pin(pin).drive_high()

    def click(self, pin: int = RECORD) -> None:
        self.press(pin)
        self.clock.now += 0.2
        self.release(pin)
        self.clock.now += 0.5

    def close(self) -> None:
        for pin in (RECORD, MARK):  # a held button keeps gpiozero's hold thread busy
            if self.factory.pin(pin).function == "input":
                self.release(pin)
        self.panel.close()


@pytest.fixture
def make_panel():
    panels = []

    def make(state: str = "idle", **gpio) -> Panel:
        panel = Panel(Gpio(**gpio), state)
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        panel.close()


# --- record button ------------------------------------------------------------------------


def test_press_starts_when_idle_and_stops_when_recording(make_panel):
    panel = make_panel()
    panel.click()
    panel.state = "recording"
    panel.click()
    assert panel.commands == ["start", "stop"]


def test_press_in_error_or_not_set_up_asks_to_start(make_panel):
    # The recorder re-checks the microphone / the keys and says why it refuses.
    panel = make_panel(state="error")
    panel.click()
    panel.state = "not_set_up"
    panel.click()
    assert panel.commands == ["start", "start"]


def test_press_while_stopping_is_ignored(make_panel):
    panel = make_panel(state="stopping")
    panel.click()
    assert panel.commands == []


def test_contact_bounce_gives_one_command(make_panel):
    panel = make_panel(bounce_seconds=0.05)
    panel.press()
    for _ in range(5):  # the contacts chatter for a few milliseconds
        panel.clock.now += 0.002
        panel.release()
        panel.clock.now += 0.002
        panel.press()
    panel.clock.now += 0.3
    panel.release()
    for _ in range(3):  # and chatter again on release
        panel.clock.now += 0.002
        panel.press()
        panel.clock.now += 0.002
        panel.release()
    assert panel.commands == ["start"]
    panel.state = "recording"
    panel.clock.now += 1.0
    panel.click()
    assert panel.commands == ["start", "stop"]


def test_without_debounce_every_press_counts(make_panel):
    panel = make_panel(bounce_seconds=0.0)
    panel.press()
    panel.release()
    panel.press()
    assert panel.commands == ["start", "start"]


def test_hold_to_stop_ignores_a_brush_and_stops_on_a_hold(make_panel):
    panel = make_panel(state="recording", stop_hold_seconds=0.2)
    panel.click()  # a brush against the button: released long before 0.2 s
    assert panel.commands == []
    panel.press()
    assert panel.got_command.wait(5), "holding the button did not stop the recording"
    panel.release()
    assert panel.commands == ["stop"]


def test_holding_the_press_that_started_a_recording_does_not_stop_it(make_panel):
    panel = make_panel(stop_hold_seconds=0.1)
    panel.press()
    panel.state = "recording"  # the recorder started on the press
    # gpiozero's hold thread fires when_held after 0.1 s; give it several times that.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and len(panel.commands) < 2:
        time.sleep(0.05)
    panel.release()
    assert panel.commands == ["start"]


# --- mark button ------------------------------------------------------------------------------


def test_mark_button_asks_for_a_bookmark(make_panel):
    panel = make_panel(state="recording")
    panel.click(MARK)
    panel.click(MARK)
    assert panel.commands == ["mark", "mark"]


def test_mark_button_bounce_gives_one_bookmark(make_panel):
    panel = make_panel(state="recording", bounce_seconds=0.05)
    panel.press(MARK)
    panel.clock.now += 0.001
    panel.release(MARK)
    panel.clock.now += 0.001
    panel.press(MARK)
    assert panel.commands == ["mark"]


def test_no_mark_button_when_none_is_fitted(make_panel):
    panel = make_panel(mark_button_pin=-1)
    assert panel.panel.mark is None
    # The pin stays free for something else.
    LED(MARK, pin_factory=panel.factory).close()


def test_buttons_use_the_configured_pins(make_panel):
    panel = make_panel(record_button_pin=5, mark_button_pin=6)
    panel.click(5)
    panel.state = "recording"
    panel.click(6)
    assert panel.commands == ["start", "mark"]
    assert panel.factory.pin(5).pull == "up"  # wired to ground, internal pull-up


# --- the light --------------------------------------------------------------------------------


def wait_for_states(pin, predicate, timeout: float = 5.0) -> list:
    """The pin's state history once ``predicate(states)`` holds (or fail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [s.state for s in pin.states]
        if predicate(states):
            return states
        time.sleep(0.02)
    raise AssertionError(f"LED never showed the expected states: {[s.state for s in pin.states]}")


@pytest.fixture
def light():
    factory = MockFactory()
    status = StatusLight(LED(LED_PIN, pin_factory=factory))
    status.pin = factory.pin(LED_PIN)
    yield status
    status.close()


def test_recording_is_solid(light):
    light.show("recording")
    wait_for_states(light.pin, lambda s: s[-1] is True)
    light.pin.clear_states()
    time.sleep(0.3)
    assert [s.state for s in light.pin.states] == [True]  # no change at all: steady


def test_error_blinks_fast(light):
    light.show("error")
    states = wait_for_states(light.pin, lambda s: len(s) >= 8)
    assert states[1:8] == [True, False, True, False, True, False, True]


def test_disk_low_is_a_double_blink(light):
    light.show("disk_low")
    wait_for_states(light.pin, lambda s: len(s) >= 6)
    history = light.pin.states[:6]
    assert [s.state for s in history] == [False, True, False, True, False, True]
    # Each entry's timestamp is how long the previous state lasted: two short
    # flashes with a short gap, then a pause far longer than that gap.
    short_gap, long_gap = history[3].timestamp, history[5].timestamp
    assert long_gap > 3 * short_gap


def test_patterns_are_distinct_for_every_state():
    shapes = {name: steps for name, steps in PATTERNS.items()}
    assert len(set(shapes.values())) == len(shapes)


def test_bookmark_flash_then_back_to_solid(light):
    light.show("recording")
    wait_for_states(light.pin, lambda s: s[-1] is True)
    light.pin.clear_states()
    light.flash("bookmark")
    states = wait_for_states(light.pin, lambda s: s.count(False) >= 2 and s[-1] is True)
    assert states[:5] == [True, False, True, False, True]
    assert light.pattern == "recording"


def test_refused_flash_blinks_then_resumes_idle(light):
    light.show("idle")
    light.flash("refused")
    wait_for_states(light.pin, lambda s: s.count(True) >= 4)
    assert light.pattern == "idle"
    assert len(FLASHES["refused"]) * 0.1 >= 2.0  # long enough to be seen


def test_active_low_led_is_lit_by_a_low_pin():
    factory = MockFactory()
    status = make_light(Gpio(active_low_led=True), factory)
    try:
        status.show("recording")
        wait_for_states(factory.pin(LED_PIN), lambda s: s[-1] is False)
    finally:
        status.close()
    assert factory.pin(LED_PIN).state is True  # off again when closed


def test_pwm_pin_gives_a_dim_heartbeat():
    factory = MockFactory(pin_class=MockPWMPin)
    status = make_light(Gpio(), factory)
    try:
        assert isinstance(status.led, PWMLED)
        status.show("idle")
        states = wait_for_states(factory.pin(LED_PIN), lambda s: IDLE_LEVEL in s)
        assert max(states) == IDLE_LEVEL  # never full brightness while idle
    finally:
        status.close()


def test_plain_pin_falls_back_to_on_off():
    factory = MockFactory()
    status = make_light(Gpio(), factory)
    try:
        assert type(status.led) is LED
        status.show("idle")
        wait_for_states(factory.pin(LED_PIN), lambda s: True in s)
    finally:
        status.close()


def test_no_led_is_a_quiet_no_op():
    status = StatusLight(None)
    status.show("error")
    status.flash("bookmark")
    assert status.pattern == "error"
    status.close()


def test_unknown_pattern_is_refused(light):
    with pytest.raises(ValueError, match="unknown LED pattern"):
        light.show("disco")
