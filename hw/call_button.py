"""The bedside call button and its lamp.

The button only reports: a press is ``CallPressed`` at once, a hold of ``clear_hold_s`` is
``CallHeld`` (a clinician clearing the call at the bedside) as soon as the hold time is
reached, without waiting for the release. What a press or hold means is the core's business.

Debouncing is ours, on the injected clock, because gpiozero's mock pins store a bounce time
but never apply it and real contacts chatter. It is asymmetric: a press counts at its first
edge (a patient's call must not wait), a release only once the contact has stayed open for
``bounce_ms``. Chatter on either edge is one press, and a flicker of a worn contact during a
bedside hold does not break the hold.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from controller.clock import SystemClock
from controller.events import CallHeld, CallPressed, DeviceChanged
from controller.ports import Clock, Emit, LampMode
from hw.stepper import Waiter, real_wait, run_steps

log = logging.getLogger(__name__)

"""Block until the event is set or ``timeout`` real seconds pass (``None``: no timeout)."""

LAMP_PULSE_S = 0.8
"""Fade-in and fade-out time of the pulsing lamp (a calm, clearly-alive pulse)."""


class CallButton:
    """The call button (a gpiozero ``Button``, active low) and its lamp (``CallLamp`` port).

    The hold timer runs on its own thread; ``poll(now)`` is the whole of its work, so tests
    with a fake clock call it instead of waiting.
    """

    def __init__(
        self,
        pin: int,
        lamp_pin: int,
        emit: Emit,
        clock: Clock | None = None,
        bounce_ms: float = 30.0,
        clear_hold_s: float = 2.0,
        pin_factory: Any = None,
        *,
        waiter: Waiter | None = None,
        start: bool = True,
    ) -> None:
        from gpiozero import LED, PWMLED, DigitalInputDevice
        from gpiozero.exc import PinPWMUnsupported

        self._emit = emit
        self._clock: Clock = clock or SystemClock()
        self._waiter = waiter or real_wait
        self.bounce_s = bounce_ms / 1000.0
        self.clear_hold_s = clear_hold_s
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._pressed = False  # the debounced state
        self._release_at: float | None = None  # a release edge waiting to be confirmed
        self._pressed_at = 0.0
        self._held_sent = False
        self.lamp_mode: LampMode = "off"
        # bounce_time=None: gpiozero's debounce is not applied on every pin factory. Not a
        # gpiozero Button: its hold thread wakes ten times a second for a hold we time here.
        self.button: Any = DigitalInputDevice(
            pin, pull_up=True, bounce_time=None, pin_factory=pin_factory
        )
        try:
            try:
                self.lamp: Any = PWMLED(lamp_pin, pin_factory=pin_factory)
                self._lamp_dims = True
            except PinPWMUnsupported:
                self.lamp = LED(lamp_pin, pin_factory=pin_factory)
                self._lamp_dims = False
        except Exception:
            self.button.close()
            raise
        self.button.when_activated = self._on_press
        self.button.when_deactivated = self._on_release
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(target=self._run, name="roomd-call-hold", daemon=True)
            self._thread.start()
        # A plain contact cannot tell a pulled cord from an idle button: "ok" is all we know.
        emit(DeviceChanged(device="call_button", status="ok", detail=f"GPIO{pin}"))

    def _on_press(self) -> None:
        now = self._clock.monotonic()
        with self._lock:
            # A pressed button whose release has lasted the bounce time (not yet confirmed by
            # poll) is pressed anew; any other press edge is chatter: it never let go.
            if self._pressed and (
                self._release_at is None or now - self._release_at < self.bounce_s
            ):
                self._release_at = None
                return
            self._pressed, self._release_at = True, None
            self._pressed_at, self._held_sent = now, False
            self._emit(CallPressed())
        self._wake.set()

    def _on_release(self) -> None:
        now = self._clock.monotonic()
        with self._lock:
            if self._pressed and self._release_at is None:
                self._release_at = now  # confirmed by poll() once bounce_ms have passed
        self._wake.set()

    def poll(self, now: float | None = None) -> float | None:
        """Settle a pending release and emit ``CallHeld`` once a hold is long enough.

        ``now`` is clock time (default: the clock's). Returns the clock seconds until the next
        check is due, or ``None`` if nothing is pending.
        """
        t = self._clock.monotonic() if now is None else now
        with self._lock:
            if not self._pressed:
                return None
            if self._release_at is not None:
                if self.button.is_active:
                    self._release_at = None  # closed again: it was a flicker
                else:
                    wait = self._release_at + self.bounce_s - t
                    if wait <= 1e-9:
                        self._pressed, self._release_at = False, None
                        return None
                    return wait  # a hold ends only if the release proves real
            if self._held_sent:
                return None
            remaining = self._pressed_at + self.clear_hold_s - t
            if remaining > 1e-9:  # (a sliver of float rounding is not time left)
                return remaining
            self._held_sent = True
            self._emit(CallHeld())
            return None

    def _run(self) -> None:
        # At least 1 ms: clock rounding can leave a sliver that a fake clock cannot advance.
        run_steps(
            self.poll,
            clock=self._clock,
            wake=self._wake,
            waiter=self._waiter,
            closed=lambda: self._closed,
            min_wait_s=0.001,
            what="call button hold check",
        )

    def set_lamp(self, mode: LampMode) -> None:
        """Turn the lamp off, pulse it (call placed) or hold it steady (acknowledged)."""
        if mode == self.lamp_mode:
            return  # restarting a pulse would make it stutter
        if mode == "off":
            self.lamp.off()
        elif mode == "steady":
            self.lamp.on()
        elif mode == "pulse":
            if self._lamp_dims:
                self.lamp.pulse(fade_in_time=LAMP_PULSE_S, fade_out_time=LAMP_PULSE_S)
            else:
                self.lamp.blink(on_time=LAMP_PULSE_S, off_time=LAMP_PULSE_S)
        else:
            log.warning("unknown call lamp mode %r ignored", mode)
            return
        self.lamp_mode = mode

    def close(self) -> None:
        """Stop the hold timer and release the button and lamp pins."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.button.when_activated = None
        self.button.when_deactivated = None
        self.button.close()
        self.lamp.close()
