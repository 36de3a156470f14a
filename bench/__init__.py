"""``make bench``: the room's latency, footprint, recovery, journal and clinic-scale figures.

Every figure is measured against a real Mosquitto on loopback and real ``roomd --simulate``
processes started by the bench, and comes with a reference measured in the same run (the raw
paho floor on the same broker, a bare paho process, the other SQLite mode…), because the
machine running it is usually shared and its absolute numbers are noisy.

``python -m bench [--quick] [--only NAME ...]``; see ``bench.cli``.
"""
