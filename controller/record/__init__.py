"""The session record: what happened in one session, for clinicians, researchers and programs.

Written from the journal, off the core thread, when a session ends (``writer.RecordWriter``)
and again on demand (``roomd report <session_id>``, ``roomctl report``). Nothing in the core
imports this package: only ``controller.daemon`` wires it in, behind the ``SessionRecords``
port.

- ``summary``: the ``session.json`` record and the ``vitals.csv`` rows;
- ``html``: ``report.html``, one self-contained page;
- ``hl7``: ``oru_r01.hl7``, the vitals as an HL7 v2.6 ORU^R01 message;
- ``files``: the ``reports/<session_id>/`` directory;
- ``reader``: a read-only view of the journal for the worker thread;
- ``writer``: the worker thread.
"""
