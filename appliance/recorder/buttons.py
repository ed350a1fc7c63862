"""The clinician's whole interface: one record button, an optional mark button, one light.

Buttons are wired between a BCM pin and ground (the internal pull-up is used);
the LED between a pin and ground through a resistor (or to 3.3 V with
``gpio.active_low_led``). Hardware is a parameter: every device takes the
``pin_factory`` passed in, so tests press real gpiozero ``Button`` objects on
a ``MockFactory`` and read the LED pin back.

:class:`ButtonPanel` turns presses into recorder commands (``start``,
``stop``, ``mark``); :class:`StatusLight` plays the LED patterns below.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from gpiozero import LED, PWMLED, Button
from gpiozero.exc import PinPWMError

from appliance.config import Gpio

log = logging.getLogger(__name__)

# Brightness of the idle heartbeat on a PWM pin: visible, not distracting in a
# consulting room. A plain on/off pin shows it at full brightness.
IDLE_LEVEL = 0.3

# (brightness, seconds) steps, repeated. A single step with 0 s is steady.
PATTERNS: dict[str, tuple[tuple[float, float], ...]] = {
    "off": ((0.0, 0),),
    "idle": ((IDLE_LEVEL, 0.15), (0.0, 2.85)),            # heartbeat: ready
    "recording": ((1.0, 0),),                             # solid: recording
    "error": ((1.0, 0.1), (0.0, 0.1)),                    # fast blink: look at me
    "disk_low": ((1.0, 0.15), (0.0, 0.15), (1.0, 0.15), (0.0, 1.55)),  # double blink
    "not_set_up": ((1.0, 1.0), (0.0, 1.0)),               # slow blink: finish setup
}

# Played once over the current pattern, which then resumes.
FLASHES: dict[str, tuple[tuple[float, float], ...]] = {
    # Two quick dark gaps in the solid light: "bookmark taken".
    "bookmark": ((0.0, 0.12), (1.0, 0.12), (0.0, 0.12), (1.0, 0.3)),
    # Three seconds of fast blinking: "I did not start" (the log says why).
    "refused": PATTERNS["error"] * 15,
}


class StatusLight:
    """Plays :data:`PATTERNS` on one LED from a background thread.

    ``led`` is a gpiozero ``LED`` or ``PWMLED``, or ``None`` (no light fitted
    or no GPIO: every call is then a no-op apart from remembering the pattern).
    """

    def __init__(self, led: LED | PWMLED | None):
        self.led = led
        self._pattern = "off"
        self._flash: tuple[tuple[float, float], ...] = ()
        self._changed = threading.Event()
        self._closed = False
        self._thread = None
        if led is not None:
            self._thread = threading.Thread(target=self._run, name="holdnote-led", daemon=True)
            self._thread.start()

    @property
    def pattern(self) -> str:
        """The pattern now shown (flashes are not patterns)."""
        return self._pattern

    def show(self, name: str) -> None:
        """Switch to a pattern; calling again with the same name changes nothing."""
        if name not in PATTERNS:
            raise ValueError(f"unknown LED pattern {name!r}")
        if name != self._pattern:
            self._pattern = name
            self._changed.set()

    def flash(self, name: str) -> None:
        """Play a one-off flash, then resume the pattern."""
        self._flash = FLASHES[name]
        self._changed.set()

    def close(self) -> None:
        """Turn the light off and stop the thread."""
        self._closed = True
        self._changed.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.led is not None:
            self.led.close()

    def _set(self, value: float) -> None:
        if self.led is not None:  # always, on the thread that plays the patterns
            self.led.value = value if isinstance(self.led, PWMLED) else int(value > 0)

    def _run(self) -> None:
        while not self._closed:
            self._changed.clear()
            steps, self._flash = (self._flash, ()) if self._flash else (PATTERNS[self._pattern], ())
            self._play(steps)
        self._set(0.0)

    def _play(self, steps: tuple[tuple[float, float], ...]) -> None:
        for value, seconds in steps:
            self._set(value)
            # Waiting on the event, not sleeping: a new pattern takes effect at once.
            if self._changed.wait(seconds if seconds > 0 else None):
                return


def make_light(gpio: Gpio, pin_factory=None) -> StatusLight:
    """The status light on ``gpio.led_pin``: dimmable if the pin can do PWM."""
    active_high = not gpio.active_low_led
    try:
        led: LED | PWMLED = PWMLED(gpio.led_pin, active_high=active_high, pin_factory=pin_factory)
    except PinPWMError:
        led = LED(gpio.led_pin, active_high=active_high, pin_factory=pin_factory)
    return StatusLight(led)


class ButtonPanel:
    """The record and mark buttons, turned into recorder commands.

    ``state`` returns the recorder's state name; ``command`` is called with
    ``"start"``, ``"stop"`` or ``"mark"`` (from gpiozero's event thread, so it
    must only queue the command). The record button starts when not
    recording; while recording, a press stops, or with ``stop_hold_seconds``
    a hold of that long does (a brush against the button does not end a
    session, and a long press that *started* a recording never stops it).
    Debouncing is done here, against ``clock``, so it behaves the same on
    every pin driver, the mock included.
    """

    def __init__(self, gpio: Gpio, state: Callable[[], str], command: Callable[[str], None],
                 *, pin_factory=None, clock: Callable[[], float] = time.monotonic):
        self.gpio = gpio
        self._state = state
        self._command = command
        self._clock = clock
        self._press_began_recording = False
        self._last: dict[str, float] = {}
        self.record = Button(gpio.record_button_pin, pull_up=True, pin_factory=pin_factory,
                             hold_time=gpio.stop_hold_seconds or 1.0)
        self.record.when_pressed = self._record_pressed
        self.record.when_released = lambda: self._edge("record")
        if gpio.stop_hold_seconds > 0:
            self.record.when_held = self._record_held
        self.mark: Button | None = None
        if gpio.mark_button_pin >= 0:
            self.mark = Button(gpio.mark_button_pin, pull_up=True, pin_factory=pin_factory)
            self.mark.when_pressed = self._mark_pressed
            self.mark.when_released = lambda: self._edge("mark")

    def _edge(self, name: str) -> None:
        self._last[name + ".edge"] = self._clock()

    def _bounced(self, name: str) -> bool:
        """True for a press within ``bounce_seconds`` of this button's last edge."""
        now, window = self._clock(), self.gpio.bounce_seconds
        recent = [t for key, t in self._last.items() if key.startswith(name + ".")]
        self._last[name + ".edge"] = now
        if any(now - t < window for t in recent):
            log.debug("%s button bounce ignored", name)
            return True
        self._last[name + ".press"] = now
        return False

    def _record_pressed(self) -> None:
        if self._bounced("record"):
            return
        state = self._state()
        self._press_began_recording = state == "recording"
        if state == "recording":
            if self.gpio.stop_hold_seconds > 0:
                log.info("record button pressed: hold it %.1f s to stop",
                         self.gpio.stop_hold_seconds)
                return
            self._command("stop")
        elif state != "stopping":
            self._command("start")

    def _record_held(self) -> None:
        if self._press_began_recording and self._state() == "recording":
            self._command("stop")

    def _mark_pressed(self) -> None:
        if not self._bounced("mark"):
            self._command("mark")

    def close(self) -> None:
        """Release the pins."""
        self.record.close()
        if self.mark is not None:
            self.mark.close()
