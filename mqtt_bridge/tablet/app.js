/* The clinician's tablet: rooms over MQTT 5 (MQTT.js over WebSockets), plain DOM, no build.
 * Pure logic lives in logic.js (RoomLogic); this file is the wiring: connection, topics,
 * commands and replies, catch-up, rendering, sound. */
(function () {
  "use strict";
  const L = window.RoomLogic;
  const C = window.CourseContext;
  const $ = (id) => document.getElementById(id);
  const SCENES = ["idle", "check_in", "integration", "intentions", "pre_infusion", "infusion",
    "debrief", "preparation", "discharge", "ended", "emergency"];
  const LEAVES = ["status", "state", "alarms", "vitals", "vitals/nibp", "events", "replies"];
  const TREND = 90; // samples kept for the sparklines (≈1.5 min at 1 Hz)
  const KEEP_EVENTS = 400;
  const FIRST_WINDOW = 300; // events fetched for a room seen for the first time

  const app = {
    client: null, by: "", prefix: "clinic", connected: false, everConnected: false,
    lostAt: null, rooms: new Map(), current: null, pending: new Map(), audio: null,
    lastSound: {}, debug: { sounds: [], catchups: [] },
    courses: new Map(), // patient_ref -> {course, at, note, rid} from the archive (clinicd)
  };
  window.tablet = app; // for the browser tests and for a curious technician
  Object.assign(app, { request, render, esc }); // lent to intentions_view.js

  // --- rooms --------------------------------------------------------------------------

  function room(id) {
    let r = app.rooms.get(id);
    if (!r) {
      r = {
        id, status: undefined, state: null, stateAt: null, alarms: [], alarmsKey: "",
        vitals: null, vitalsAt: null, nibp: null, spo2: [], hr: [], events: [], seen: new Set(),
        maxSeq: 0, lastGate: null, confirmed: {}, prompts: [], tracks: [], replies: [], offset: null, heardAt: null,
        catching: false, catchAgain: false, catchNote: "",
      };
      app.rooms.set(id, r);
    }
    return r;
  }

  /**
   * The room's clock (ms) as best known: its latest live timestamp + time since it came
   * (this also absorbs a tablet whose clock is off, and --time-scale in simulation). A room
   * that is offline or silent is frozen at the moment it was last heard.
   */
  function roomNow(r) {
    const at = health(r).level === "online" || r.heardAt === null ? Date.now() : r.heardAt;
    return at + (r.offset === null ? 0 : r.offset);
  }

  function noteClock(r, ts) {
    const ms = L.parseTs(ts);
    r.heardAt = Date.now();
    if (ms !== null) r.offset = ms - r.heardAt;
  }

  /** Seconds since the room's state was computed, extrapolated at the room's clock. */
  function sinceState(r) {
    if (!r.state) return 0;
    const upd = L.parseTs(r.state.updated_at);
    const s = r.offset !== null && upd !== null ? (roomNow(r) - upd) / 1000 : (Date.now() - r.stateAt) / 1000;
    return Math.max(0, s);
  }

  function health(r) {
    return L.roomHealth(r.status, r.stateAt, Date.now());
  }

  // --- connection ---------------------------------------------------------------------

  function loadForm() {
    const saved = JSON.parse(localStorage.getItem("roomd.tablet") || "{}");
    $("f-host").value = saved.host || location.hostname || "127.0.0.1";
    $("f-port").value = saved.port || location.port || (location.protocol === "https:" ? "443" : "80");
    $("f-path").value = saved.path || "/mqtt";
    $("f-tls").checked = saved.tls !== undefined ? saved.tls : location.protocol === "https:";
    $("f-prefix").value = saved.prefix || "clinic";
    $("f-by").value = saved.by || "";
    $("f-user").value = saved.user || "";
  }

  function login(ev) {
    ev.preventDefault();
    const f = {
      host: $("f-host").value.trim(), port: $("f-port").value.trim(), path: $("f-path").value.trim() || "/",
      tls: $("f-tls").checked, prefix: $("f-prefix").value.trim().replace(/\/+$/, "") || "clinic",
      by: $("f-by").value.trim(), user: $("f-user").value.trim(),
    };
    if (!f.by) { $("login-error").textContent = "Enter your clinician id."; return; }
    localStorage.setItem("roomd.tablet", JSON.stringify(f));
    startAudio();
    app.by = f.by;
    app.prefix = f.prefix;
    const url = (f.tls ? "wss://" : "ws://") + f.host + ":" + f.port + (f.path[0] === "/" ? f.path : "/" + f.path);
    $("login-error").textContent = "Connecting to " + url + " …";
    $("connect").disabled = true;
    const client = mqtt.connect(url, {
      protocolVersion: 5, clean: true, keepalive: 15, reconnectPeriod: 2000, connectTimeout: 5000,
      clientId: "tablet-" + f.by.replace(/[^A-Za-z0-9_-]/g, "").slice(0, 20) + "-" + Math.random().toString(16).slice(2, 8),
      username: f.user || f.by, password: $("f-pass").value,
      resubscribe: false,
    });
    app.client = client;
    client.on("connect", onConnect);
    client.on("message", onMessage);
    client.on("close", onClose);
    client.on("offline", onClose);
    client.on("error", (err) => {
      const words = String((err && err.message) || err);
      if (!app.everConnected) {
        const auth = /not authori|bad user|password/i.test(words);
        $("login-error").textContent = auth
          ? "The broker refused the user name or password (" + words + ")."
          : "Cannot connect: " + words;
        if (auth) logout(true);
      } else {
        app.lastError = words;
      }
      render();
    });
  }

  function onConnect() {
    const first = !app.everConnected;
    app.connected = true;
    app.everConnected = true;
    app.lostAt = null;
    $("login-error").textContent = "";
    $("connect").disabled = false;
    const topics = {};
    for (const leaf of LEAVES) topics[app.prefix + "/rooms/+/" + leaf] = { qos: 1 };
    topics[app.prefix + "/archive/replies"] = { qos: 1 };
    app.client.subscribe(topics, (err) => {
      if (err) app.lastError = "subscribe failed: " + err.message;
      // Catch up every room we already know; rooms seen for the first time catch up on arrival.
      for (const r of app.rooms.values()) catchUp(r);
    });
    if (first) show(app.current ? "room" : "overview");
    render();
  }

  function onClose() {
    if (app.connected) app.lostAt = Date.now();
    app.connected = false;
    render();
  }

  function logout(keepError) {
    if (app.client) app.client.end(true);
    app.client = null;
    app.connected = false;
    app.everConnected = false;
    app.rooms.clear();
    app.pending.clear();
    app.current = null;
    if (app.onLogout) app.onLogout(); // clinical-forms.js forgets drafts and fetched notes
    $("connect").disabled = false;
    if (!keepError) $("login-error").textContent = "";
    show("login");
    render();
  }

  /** Log out, after asking when a room still has an unacknowledged alarm or a waiting call. */
  async function confirmLogout() {
    const open = attention().lines.filter((l) => l.kind === "alarm" || l.kind === "call").map((l) => l.text);
    if (open.length) {
      const yes = await ask({
        title: "Log out with alarms open?",
        text: "Still open: " + open.slice(0, 3).join("; ") + (open.length > 3 ? " (+" + (open.length - 3) + " more)" : "") + ". After logging out this tablet no longer shows or sounds them.",
        ok: "Log out anyway",
      });
      if (!yes) return;
    }
    logout(false);
  }

  // --- messages -----------------------------------------------------------------------

  function onMessage(topic, payload, packet) {
    if (topic === app.prefix + "/archive/replies") { onCourse(new TextDecoder().decode(payload)); return; }
    const head = app.prefix + "/rooms/";
    if (topic.indexOf(head) !== 0) return;
    const rest = topic.slice(head.length);
    const slash = rest.indexOf("/");
    if (slash < 0) return;
    const id = rest.slice(0, slash);
    const leaf = rest.slice(slash + 1);
    const text = new TextDecoder().decode(payload);
    if (leaf === "replies") { onReply(text); return; }
    if (leaf.indexOf("replies/") === 0) { if (app.onPrivateReply) app.onPrivateReply(topic, text, packet); return; }
    const isNew = !app.rooms.has(id);
    const r = room(id);
    const live = !packet.retain;
    if (leaf === "status") {
      const was = r.status;
      r.status = text.trim();
      if (was === "offline" && r.status === "online") catchUp(r);
    } else {
      let body;
      try { body = JSON.parse(text); } catch (e) { return; }
      if (!body || typeof body !== "object") return;
      if (leaf === "state") {
        const session = r.state && r.state.session_id;
        r.state = body;
        r.stateAt = Date.now();
        if (live) noteClock(r, body.updated_at);
        if (body.session_id !== session) derive(r);
      } else if (leaf === "alarms") {
        r.alarms = Array.isArray(body.alarms) ? body.alarms : [];
      } else if (leaf === "vitals") {
        r.vitals = body;
        r.vitalsAt = Date.now();
        noteClock(r, body.ts);
        push(r.spo2, body.spo2);
        push(r.hr, body.hr);
      } else if (leaf === "vitals/nibp") {
        r.nibp = body;
      } else if (leaf === "events") {
        if (live) noteClock(r, body.ts);
        const gap = r.maxSeq > 0 && body.seq > r.maxSeq + 1;
        ingest(r, [body]);
        if (gap) catchUp(r);
      }
    }
    // A room that did not answer the events query (it was reconnecting after the broker came
    // back, say) is asked again once it is heard live.
    if ((isNew || (r.catchFailed && live)) && app.connected) catchUp(r);
    render();
  }

  function push(list, v) {
    list.push(typeof v === "number" ? v : null);
    if (list.length > TREND) list.shift();
  }

  /** Add events (any order, duplicates ignored) and rebuild what derives from them. */
  function ingest(r, events) {
    let added = false;
    for (const e of events) {
      if (!e || typeof e.seq !== "number" || r.seen.has(e.seq)) continue;
      r.seen.add(e.seq);
      r.events.push(e);
      r.maxSeq = Math.max(r.maxSeq, e.seq);
      added = true;
    }
    if (!added) return;
    r.events.sort((a, b) => a.seq - b.seq);
    while (r.events.length > KEEP_EVENTS) r.seen.delete(r.events.shift().seq);
    derive(r);
  }

  function derive(r) {
    const sid = r.state ? r.state.session_id : null;
    const mine = sid ? r.events.filter((e) => e.session_id === sid) : [];
    r.confirmed = L.confirmedItems(mine, sid);
    r.prompts = L.duePrompts(mine, sid);
    let gate = null;
    for (const e of mine) {
      if (e.type === "gate_checked") {
        gate = L.gateInfo(e.data, "event #" + e.seq, e.ts);
        gate.seq = e.seq;
      }
      if (e.type === "session_started" && e.data) {
        const plan = e.data.plan || {};
        const tracks = e.data.tracks || plan.playlist || [];
        r.tracks = Array.isArray(tracks) ? tracks : [String(tracks)];
      }
      if (e.type === "plan_amended" && e.data && Array.isArray(e.data.tracks)) r.tracks = e.data.tracks; // `choose`
    }
    if (!sid) r.tracks = [];
    // A gate_not_met reply wins over gate_checked events the tablet had when it came.
    if (r.replyGate && r.replyGate.session === sid && (!gate || gate.seq <= r.replyGate.seq)) {
      gate = r.replyGate.info;
    }
    r.lastGate = gate;
  }

  // --- commands -----------------------------------------------------------------------

  function newId() {
    const rnd = crypto.getRandomValues ? Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("") : Math.random().toString(16).slice(2, 14);
    return "tab-" + rnd;
  }

  /**
   * Publish cmd/<verb>/by/<user> to a room and wait (5 s) for the reply matched by request_id on the
   * room's `replies` topic. Resolves with the reply, or null when none came in time.
   */
  function request(roomId, verb, args, quiet) {
    const r = room(roomId);
    const entry = {
      rid: newId(), verb, args: args || {}, room: roomId, sentAt: Date.now(), state: "pending",
      text: "sent, waiting for the room…", quiet: !!quiet,
    };
    if (!quiet) {
      r.replies.unshift(entry);
      if (r.replies.length > 12) r.replies.pop();
    }
    if (!app.client || !app.connected) {
      entry.state = "error";
      entry.text = "Not connected to the broker: not sent.";
      render();
      return Promise.resolve(null);
    }
    return new Promise((resolve) => {
      entry.resolve = resolve;
      app.pending.set(entry.rid, entry);
      const body = Object.assign({ request_id: entry.rid, by: app.by }, entry.args);
      app.client.publish(cmdTopic(roomId, verb), JSON.stringify(body), { qos: 1, properties: { messageExpiryInterval: 30 } }, (err) => {
        if (err && entry.state === "pending") {
          entry.state = "error";
          entry.text = "Not sent: " + err.message;
          finish(entry, null);
        }
      });
      entry.timer = setTimeout(() => {
        if (entry.state !== "pending") return;
        entry.state = "timeout";
        entry.text = "No reply within " + L.REPLY_TIMEOUT_MS / 1000 + " s — the room may not have received it.";
        finish(entry, null);
      }, L.REPLY_TIMEOUT_MS);
      render();
    });
  }

  /** cmd/<verb>/by/<broker user>: the clinic ACL lets us write only there, and the room
   * records that user as `by`, proven by the broker (docs/security.md). */
  function cmdTopic(roomId, verb) {
    const user = (app.client && app.client.options && app.client.options.username) || "";
    return app.prefix + "/rooms/" + roomId + "/cmd/" + verb + (/^[A-Za-z0-9._-]+$/.test(user) ? "/by/" + user : "");
  }
  app.request = request; // for clinical-forms.js
  app.cmdTopic = cmdTopic;
  app.setHtml = (el, html) => setHtml(el, html);

  function finish(entry, reply) {
    clearTimeout(entry.timer);
    if (entry.resolve) { entry.resolve(reply); entry.resolve = null; }
    setTimeout(() => app.pending.delete(entry.rid), 60000); // a late reply is still shown
    render();
  }

  function onReply(text) {
    let reply;
    try { reply = JSON.parse(text); } catch (e) { return; }
    const entry = reply && app.pending.get(reply.request_id);
    if (!entry) return;
    const late = entry.state === "timeout";
    entry.reply = reply;
    entry.state = reply.ok ? "ok" : "error";
    entry.text = (late ? "Late reply (" + ((Date.now() - entry.sentAt) / 1000).toFixed(1) + " s): " : "") + L.replyText(reply);
    if (!reply.ok && reply.error && reply.error.code === "gate_not_met" && reply.error.details) {
      const r = room(entry.room);
      r.replyGate = {
        seq: r.maxSeq, session: r.state ? r.state.session_id : null,
        info: L.gateInfo(Object.assign({ met: false }, reply.error.details), "reply to " + entry.verb, null),
      };
      derive(r);
    }
    if (entry.quiet && entry.verb === "events" && !reply.ok) room(entry.room).catchNote = "Fetching missed events failed: " + L.errorText(reply.error);
    if (late) { render(); return; }
    finish(entry, reply);
  }

  // --- the rolling context: the patient's course from the archive (clinicd) ----------------

  /** Ask the archive for the patient's course, unless it is fresh or already asked for. */
  function wantCourse(ref) {
    const known = app.courses.get(ref);
    if (!app.connected || (known && (known.rid || Date.now() - known.at < C.REFRESH_MS))) return;
    const rid = newId();
    app.courses.set(ref, Object.assign({}, known || { course: null, note: "Asking the archive…" }, { rid, at: Date.now() }));
    const body = JSON.stringify({ request_id: rid, by: app.by, patient_ref: ref });
    app.client.publish(app.prefix + "/archive/cmd/course", body, { qos: 1, properties: { messageExpiryInterval: 30 } });
    setTimeout(() => {
      const c = app.courses.get(ref);
      if (c && c.rid === rid) { c.rid = null; c.note = "The archive did not answer (is clinicd running?)."; render(); }
    }, L.REPLY_TIMEOUT_MS);
  }

  function onCourse(text) {
    let reply;
    try { reply = JSON.parse(text); } catch (e) { return; }
    for (const [ref, c] of app.courses) {
      if (!reply || c.rid !== reply.request_id) continue;
      c.rid = null;
      c.at = Date.now();
      if (reply.ok) { c.course = reply.result; c.note = "From the clinic archive, " + new Date().toLocaleTimeString([], { hour12: false }) + "."; }
      else { c.course = null; c.note = reply.error && /no session of this patient/.test(reply.error.message) ? "The archive knows no earlier session of " + ref + "." : "The archive refused: " + L.errorText(reply.error); }
      render();
    }
  }

  function drawContext(s) {
    const card = $("context-card");
    const show = C.wanted(s);
    card.hidden = !show;
    if (!show) return;
    wantCourse(s.patient_ref);
    const c = app.courses.get(s.patient_ref) || { course: null, note: "" };
    const view = C.contextView(c.course, s);
    setText("c-title", view ? view.title : "Previous session");
    const rows = view ? view.rows.map((r) => "<dt>" + esc(r[0]) + "</dt><dd>" + esc(r[1]) + "</dd>").join("") : "";
    setHtml($("c-rows"), rows);
    const lines = view ? view.glance.lines.map((l) => '<li class="' + (l.current ? "current" : "") + '">' + esc(l.text) + "</li>").join("") : "";
    setHtml($("c-glance"), lines);
    const flags = view ? view.glance.flags.map((f) => '<li class="' + (f.current ? "current" : "") + '" data-code="' + esc(f.code) + '"><span class="code">' + esc(f.code) + "</span> " + esc(f.text) + "</li>").join("") : "";
    setHtml($("c-flags"), flags);
    setText("c-note", c.note || "");
  }

  /** Fetch what this tablet missed with the `events` command, paging until last_seq. */
  async function catchUp(r) {
    if (r.catching) { r.catchAgain = true; return; }
    r.catching = true;
    try {
      let since = r.maxSeq ? r.maxSeq + 1 : null;
      if (since === null) {
        const probe = await request(r.id, "events", { since_seq: Number.MAX_SAFE_INTEGER, limit: 1 }, true);
        if (!probe || !probe.ok) { if (!probe) noAnswer(r); return; }
        since = Math.max(1, (probe.result.last_seq || 0) - FIRST_WINDOW + 1);
      }
      for (let page = 0; page < 100 && app.connected; page++) {
        const reply = await request(r.id, "events", { since_seq: since, limit: 1000 }, true);
        if (!reply) { noAnswer(r); return; }
        if (!reply.ok) return;
        ingest(r, reply.result.events || []);
        app.debug.catchups.push({ room: r.id, since, got: (reply.result.events || []).length, last_seq: reply.result.last_seq });
        const next = L.nextEventsPage(since, reply.result);
        if (next === null) break;
        since = next;
      }
      r.catchNote = "";
      r.catchFailed = false;
    } finally {
      r.catching = false;
      render();
      if (r.catchAgain) { r.catchAgain = false; catchUp(r); }
    }
  }

  function noAnswer(r) {
    r.catchNote = "The room did not answer the events query.";
    r.catchFailed = true;
  }

  function intOf(id) {
    const v = $(id).value.trim();
    if (!v) return undefined;
    const n = Number(v);
    return Number.isInteger(n) ? n : NaN;
  }

  function localError(r, verb, text, focus) {
    r.replies.unshift({ verb, args: {}, sentAt: Date.now(), state: "error", text });
    if (focus) $(focus).focus();
    render();
  }

  /** A button in the room view: build the command's arguments (asking first where the
   * action is grave) and send it. */
  async function act(btn) {
    const r = app.current && room(app.current);
    if (!r) return;
    const verb = btn.dataset.verb;
    const args = {};
    if (verb === "confirm") args.item = btn.dataset.item;
    if (verb === "advance" && L.nextStep(r.state, r.lastGate, r.confirmed).advance === "cuts_music") {
      const answer = await ask({
        title: "Cut the music short?",
        text: "The playlist is still playing: the debrief normally follows it. Advancing now stops the music. Why?",
        reason: "Reason to stop the music now (required)", ok: "Advance and stop the music",
      });
      if (!answer) return;
      args.reason = answer.reason;
    }
    if (verb === "advance" || verb === "start_infusion") {
      const reason = $("override").value.trim();
      if (reason) args.override = { reason };
      $("override").value = "";
    }
    if (verb === "stop_infusion") {
      const reason = $("stop-reason").value.trim();
      if (!L.hasWords(reason)) return localError(r, verb, "Give a reason in words first (not sent).", "stop-reason");
      args.reason = reason;
      $("stop-reason").value = "";
    }
    if (verb === "emergency") {
      // One tap on a preset declares it; "Other…" needs the typed details, or asks for them.
      let reason = L.emergencyReason(btn.dataset.preset, $("emergency-reason").value);
      if (!reason) {
        const answer = await ask({ title: "Emergency", text: "What is happening?", reason: "Reason (required)", ok: "Declare the emergency" });
        if (!answer) return;
        reason = answer.reason;
      }
      args.reason = reason;
      $("emergency-reason").value = "";
    }
    if (verb === "end_session") {
      const open = r.alarms.filter((a) => a.state !== "acknowledged").length;
      const answer = await ask({
        title: "End the session of " + r.id + "?",
        text: "The session ends now, in " + L.phaseLabel(r.state && r.state.phase) + ", without discharge" +
          (open ? "; " + open + " unacknowledged alarm" + (open === 1 ? "" : "s") + " will be recorded as open" : "") + ". Why?",
        reason: "Reason to end the session (required)", ok: "End the session",
      });
      if (!answer) return;
      args.reason = answer.reason;
    }
    if (verb === "alarm_ack") args.alarm_id = btn.dataset.alarm;
    if (verb === "alarm_silence") args.seconds = Number(btn.dataset.seconds);
    if (verb === "music") {
      args.action = btn.dataset.action;
      if (args.action === "preview") {
        const track = $("m-track").value;
        if (!track) return localError(r, verb, "Choose a track to preview (not sent).", "m-track");
        args.track = track;
      }
    }
    if (verb === "lights") args.scene = $("l-scene").value;
    if (verb === "record_vitals") {
      for (const k of ["sys", "dia", "hr", "spo2"]) {
        const v = intOf("rv-" + k);
        if (Number.isNaN(v)) return localError(r, verb, k + ": a whole number, please (not sent).", "rv-" + k);
        if (v !== undefined) args[k] = v;
      }
      for (const k of ["sys", "dia", "hr", "spo2"]) $("rv-" + k).value = "";
    }
    request(r.id, verb, args);
  }

  // --- questions before grave actions ------------------------------------------------

  /**
   * Ask before an action: {title, text, ok, reason: placeholder or absent}. Resolves with
   * {reason} (the words typed, when a reason was asked) or null when cancelled. A reason must
   * hold words, as the room requires.
   */
  function ask(q) {
    const box = $("ask");
    if (app.asking) app.asking(null);
    setText("ask-title", q.title);
    setText("ask-text", q.text || "");
    setText("ask-ok", q.ok);
    setText("ask-error", "");
    const field = $("ask-reason");
    field.hidden = !q.reason;
    field.value = "";
    field.placeholder = q.reason || "";
    box.hidden = false;
    (q.reason ? field : $("ask-cancel")).focus();
    return new Promise((resolve) => {
      app.asking = (answer) => { app.asking = null; box.hidden = true; resolve(answer); };
      app.askReason = !!q.reason;
    });
  }

  function answerAsk(ev) {
    ev.preventDefault();
    if (!app.asking) return;
    const reason = $("ask-reason").value.trim();
    if (app.askReason && !L.hasWords(reason)) {
      setText("ask-error", "Give the reason in words (required).");
      $("ask-reason").focus();
      return;
    }
    app.asking(app.askReason ? { reason } : {});
  }

  // --- sound (WebAudio) ---------------------------------------------------------------

  function startAudio() {
    try {
      if (!app.audio) app.audio = new (window.AudioContext || window.webkitAudioContext)();
      if (app.audio.state === "suspended") app.audio.resume();
    } catch (e) { app.audio = null; }
  }

  const PATTERNS = {
    // IEC 60601-1-8 flavoured: high = fast 5+5 burst often; medium = 3 pulses; low = 2 soft.
    high: { every: 5000, freq: 880, pulses: [0, 0.25, 0.5, 1.0, 1.25, 1.75, 2.0, 2.25, 2.75, 3.0], len: 0.15, gain: 0.35 },
    medium: { every: 8000, freq: 660, pulses: [0, 0.4, 0.8], len: 0.2, gain: 0.25 },
    low: { every: 16000, freq: 520, pulses: [0, 0.5], len: 0.25, gain: 0.15 },
    call: { every: 10000, freq: 440, pulses: [0, 0.6], len: 0.35, gain: 0.15 },
  };

  function sound(kind) {
    const p = PATTERNS[kind];
    const now = Date.now();
    if (!p || now - (app.lastSound[kind] || 0) < p.every) return;
    app.lastSound[kind] = now;
    app.debug.sounds.push({ kind, at: now, audio: app.audio ? app.audio.state : "none" });
    if (app.debug.sounds.length > 50) app.debug.sounds.shift();
    const ctx = app.audio;
    if (!ctx) return;
    const t0 = ctx.currentTime + 0.02;
    for (const at of p.pulses) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "triangle";
      osc.frequency.value = p.freq;
      gain.gain.setValueAtTime(0, t0 + at);
      gain.gain.linearRampToValueAtTime(p.gain, t0 + at + 0.02);
      gain.gain.linearRampToValueAtTime(0, t0 + at + p.len);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t0 + at);
      osc.stop(t0 + at + p.len + 0.05);
    }
  }

  /** What should sound now, across every room (the worst wins). */
  function annunciate(worst) {
    if (worst) sound(worst);
  }

  // --- what needs attention, across rooms ---------------------------------------------

  function attention() {
    const lost = app.everConnected && !app.connected ? (app.lostAt ? (Date.now() - app.lostAt) / 1000 : 0) : null;
    const rooms = Array.from(app.rooms.values()).map((r) => ({
      id: r.id, health: health(r), phase: r.state ? r.state.phase : null, alarms: r.alarms,
      call: r.state && r.state.call ? r.state.call.state : "idle", roomNowMs: roomNow(r), prompts: r.prompts,
    }));
    return L.attention(rooms, lost);
  }

  // --- rendering ----------------------------------------------------------------------

  function esc(s) {
    return String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  function show(view) {
    for (const v of ["login", "overview", "room"]) $(v + "-view").hidden = v !== view;
    $("back").hidden = view !== "room";
    $("logout").hidden = view === "login";
    app.view = view;
    window.scrollTo(0, 0);
    render();
  }

  let queued = false;
  function render() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; draw(); });
  }

  function draw() {
    const conn = $("conn");
    conn.textContent = app.connected ? "connected" : app.everConnected ? "RECONNECTING…" : "not connected";
    conn.className = "conn " + (app.connected ? "on" : "off");
    $("who").textContent = app.by ? "as " + app.by : "";
    $("title").textContent = app.view === "room" && app.current ? app.current : "Rooms";
    const att = attention();
    const banner = $("banner");
    banner.hidden = !att.lines.length || app.view === "login";
    banner.className = att.lines.length ? "level-" + att.lines[0].level : "";
    const html = att.lines.slice(0, 4).map((l) =>
      '<div class="line level-' + esc(l.level) + '"' + (l.room ? ' data-room="' + esc(l.room) + '"' : "") + ">" + esc(l.text) + "</div>").join("") +
      (att.lines.length > 4 ? '<div class="line">+' + (att.lines.length - 4) + " more</div>" : "");
    if (app.bannerHtml !== html) { app.bannerHtml = html; banner.innerHTML = html; }
    if (app.view === "overview") drawOverview();
    if (app.view === "room") drawRoom();
    annunciate(att.worst);
  }

  function vitalsText(r) {
    const v = r.vitals && Date.now() - r.vitalsAt < 5000 ? r.vitals : null;
    return {
      spo2: v && v.spo2 !== null && v.spo2 !== undefined ? String(v.spo2) : "--",
      hr: v && v.hr !== null && v.hr !== undefined ? String(v.hr) : "--",
      quality: v ? v.quality : "no data",
      nibp: r.nibp ? r.nibp.sys + "/" + r.nibp.dia : "--/--",
    };
  }

  function infusionText(r) {
    const inf = (r.state && r.state.infusion) || {};
    const target = inf.target_s || 0;
    let elapsed = inf.elapsed_s || 0;
    if (inf.running && health(r).level === "online") elapsed += sinceState(r);
    if (target) elapsed = Math.min(elapsed, target);
    const pct = target ? Math.min(100, (100 * elapsed) / target) : 0;
    let text;
    if (inf.completed) text = "complete " + L.fmtDuration(target);
    else if (inf.running) text = L.fmtDuration(elapsed) + " / " + L.fmtDuration(target);
    else if (inf.started_at) text = "stopped at " + L.fmtDuration(elapsed);
    else text = "not started";
    return { text, pct, running: !!inf.running };
  }

  function phaseTime(r) {
    if (!r.state) return "--:--";
    let s = r.state.phase_elapsed_s || 0;
    if (health(r).level === "online") s += sinceState(r);
    return L.fmtDuration(s);
  }

  function drawOverview() {
    const ids = Array.from(app.rooms.keys()).sort();
    $("no-rooms").hidden = ids.length > 0;
    const box = $("rooms");
    // One stable button per room (a tap is never lost to a redraw); its content is redrawn.
    for (const el of Array.from(box.children)) if (!app.rooms.has(el.dataset.room)) el.remove();
    ids.forEach((id, i) => {
      let card = box.querySelector('.room-card[data-room="' + CSS.escape(id) + '"]');
      if (!card) {
        card = document.createElement("button");
        card.dataset.room = id;
      }
      if (box.children[i] !== card) box.insertBefore(card, box.children[i] || null);
      const r = app.rooms.get(id);
      const s = r.state || {};
      const h = health(r);
      const v = vitalsText(r);
      const inf = infusionText(r);
      const top = L.topPriority(r.alarms);
      const open = r.alarms.filter((a) => a.state !== "acknowledged");
      const call = s.call ? s.call.state : "idle";
      const cls = ["room-card", "health-" + h.level, top ? "alarm-" + top : "", call !== "idle" ? "call-" + call : ""].join(" ");
      if (card.className !== cls) card.className = cls;
      const html = '<div class="row between"><span class="room-id">' + esc(id) + '</span><span class="badge ' + h.level + '">' + esc(h.text) + "</span></div>" +
        '<div class="phase">' + esc(L.phaseLabel(s.phase)) + ' <span class="mono">' + phaseTime(r) + "</span></div>" +
        '<div class="muted">' + (s.session_id ? "session " + esc(s.session_number) + " · " + esc(s.patient_ref || "") : "no session") + "</div>" +
        '<div class="mono">Infusion ' + esc(inf.text) + "</div>" +
        '<div class="mono vit">SpO2 <b>' + esc(v.spo2) + "</b> HR <b>" + esc(v.hr) + "</b> NIBP <b>" + esc(v.nibp) + "</b></div>" +
        '<div class="alarm-line ' + (top || "none") + '">' + (open.length ? esc(top.toUpperCase() + ": " + L.sortAlarms(open)[0].message + (open.length > 1 ? " (+" + (open.length - 1) + ")" : "")) : r.alarms.length ? "alarms acknowledged: " + r.alarms.length : "no alarms") + "</div>" +
        '<div class="call-line ' + esc(call) + '">' + (call === "idle" ? "no call" : "CALL " + esc(call.toUpperCase())) + "</div>" +
        r.prompts.map((p) => '<div class="prompt-line">' + esc(p.text) + "</div>").join("");
      setHtml(card, html);
    });
  }

  /**
   * Replace an element's content only when the HTML we would write changed. Compared with
   * what we wrote last, not with innerHTML: the browser serialises &#39; and &quot; in text
   * back as ' and ", so a text with a quote never compared equal and its list was rebuilt at
   * every redraw (buttons and lines replaced under the finger, stale for the browser tests).
   */
  const written = new WeakMap();
  function setHtml(el, html) {
    if (written.get(el) === html) return;
    written.set(el, html);
    el.innerHTML = html;
  }

  function setText(id, text) {
    const el = $(id);
    if (el.textContent !== text) el.textContent = text;
  }

  function drawRoom() {
    const r = room(app.current);
    const s = r.state || {};
    const phase = s.phase || "idle";
    const h = health(r);
    const hb = $("room-health");
    hb.className = "health " + h.level;
    hb.textContent = h.level === "online" ? "" : h.level === "offline"
      ? "ROOM OFFLINE — the room is not connected; what you see is its last known state."
      : h.level === "stale" ? "ROOM NOT UPDATING — " + h.text + "; what you see may be out of date."
      : "Waiting for the room's state…";
    hb.hidden = h.level === "online";
    document.title = "roomd — " + r.id;

    setText("r-phase", L.phaseLabel(phase));
    setText("r-phase-time", phaseTime(r));
    setText("r-session", s.session_id ? "Session " + s.session_number + " · patient " + (s.patient_ref || "-") + " · " + s.session_id : "No session running");
    const inf = infusionText(r);
    setText("r-inf-text", inf.text);
    $("r-inf-bar").style.width = inf.pct.toFixed(1) + "%";
    $("r-infusion").className = "infusion" + (inf.running ? " running" : "");

    const step = L.nextStep(s, r.lastGate, r.confirmed);
    setText("r-next", step.next ? L.phaseLabel(step.next).replace("start_infusion", "start the infusion") + (step.when ? " " + step.when : "") : "-");
    const gateHtml = step.items.map((i) =>
      '<li class="' + (i.met ? "met" : "unmet") + '" data-item="' + esc(i.key) + '"><span class="tick">' + (i.met ? "✓" : "✗") + "</span> " + esc(i.label) +
      (i.met ? "" : '<div class="why">' + esc(i.detail) + "</div>") + "</li>").join("");
    setHtml($("r-gate"), gateHtml);
    const g = r.lastGate && r.lastGate.gate === step.gate ? r.lastGate : null;
    setText("r-gate-last", g ? "Last check of the " + g.gate + " gate (" + g.source + "): " +
      (g.met ? "met" : "not met — " + g.unmet.map((u) => u.key + (u.text ? ": " + u.text : "")).join("; ")) +
      (g.override ? " — overridden by " + g.override.by + ": " + g.override.reason : "") : "");
    setText("r-next-note", step.note + (r.catchNote ? " " + r.catchNote : ""));
    drawContext(s);
    if (app.drawClinical) app.drawClinical(r, s); // clinical-forms.js

    // Buttons: greyed out when the phase cannot allow them or we are offline.
    const call = s.call ? s.call.state : "idle";
    for (const b of document.querySelectorAll("#room-view button[data-verb]")) {
      let ok = app.connected && L.allowed(b.dataset.verb, phase);
      if (b.dataset.verb === "call_ack") ok = ok && (call === "placed" || call === "escalated");
      if (b.dataset.verb === "call_clear") ok = ok && call !== "idle";
      if (b.dataset.verb === "start_infusion") ok = ok && !(s.infusion && s.infusion.started_at);
      if (b.dataset.verb === "stop_infusion") ok = ok && !!(s.infusion && s.infusion.running);
      if (b.dataset.verb === "advance") ok = ok && step.advance !== "blocked";
      b.disabled = !ok;
    }
    // Advance is the invited next step only when nothing would be cut short by it.
    const adv = $("advance");
    adv.className = "act" + (step.advance ? " quiet" : " primary");
    setText("advance", step.advance === "cuts_music" ? "Advance (stops the music)…" : "Advance");

    // Alarms: rebuild the list only when it changes (buttons stay under the finger).
    const key = JSON.stringify(r.alarms);
    if (key !== r.alarmsKey || !$("r-alarms").dataset.room || $("r-alarms").dataset.room !== r.id) {
      r.alarmsKey = key;
      $("r-alarms").dataset.room = r.id;
      const list = L.sortAlarms(r.alarms);
      $("r-alarms").innerHTML = list.length ? list.map((a) =>
        '<li class="alarm ' + esc(a.priority) + " " + esc(a.state) + (L.reactivated(a) ? " reactivated" : "") + '" data-code="' + esc(a.code) + '">' +
        '<div class="row between"><span class="prio">' + esc(a.priority.toUpperCase()) + " · " + esc(L.alarmStateText(a)) + "</span>" +
        '<span class="mono sil" data-id="' + esc(a.id) + '"></span></div>' +
        '<div class="msg">' + esc(a.message) + "</div>" +
        '<div class="muted small-text">' + esc(a.code) + " · " + esc(a.kind) + (a.value !== null && a.value !== undefined ? " · value " + esc(a.value) : "") + (a.limit !== null && a.limit !== undefined ? " · limit " + esc(a.limit) : "") + " · since " + esc(String(a.raised_at || "").slice(11, 19)) + "</div>" +
        (a.state !== "acknowledged" ? '<button data-verb="alarm_ack" data-alarm="' + esc(a.id) + '" class="act ack">Acknowledge</button>' : "") +
        "</li>").join("") : '<li class="none">No alarms</li>';
      for (const b of $("r-alarms").querySelectorAll("button")) b.disabled = !app.connected;
    }
    let maxLeft = 0;
    for (const a of r.alarms) {
      const left = L.silenceLeft(a, roomNow(r));
      maxLeft = Math.max(maxLeft, left);
      const span = document.querySelector('#r-alarms .sil[data-id="' + CSS.escape(a.id) + '"]');
      if (span) span.textContent = left > 0 ? "silenced " + Math.ceil(left) + " s" : "";
    }
    setText("r-silence", maxLeft > 0 ? "🔇 silenced " + Math.ceil(maxLeft) + " s" : "");

    const callEl = $("r-call");
    callEl.className = "call " + call;
    setText("r-call", { idle: "No call", placed: "PATIENT CALLING", acknowledged: "Call acknowledged — not cleared", escalated: "PATIENT CALLING — ESCALATED" }[call] || call);

    // Vitals.
    const v = vitalsText(r);
    setText("v-spo2", v.spo2);
    setText("v-hr", v.hr);
    setText("v-nibp", v.nibp);
    $("v-spo2").className = "huge mono" + (s.alarms && s.alarms.some((c) => c.indexOf("spo2") === 0) ? " bad" : "");
    $("v-hr").className = "huge mono" + (s.alarms && s.alarms.some((c) => c.indexOf("hr_") === 0) ? " bad" : "");
    $("s-spo2").firstElementChild.setAttribute("d", L.sparkPath(r.spo2, 160, 36, 80, 100));
    const hrs = r.hr.filter((x) => typeof x === "number");
    const mid = hrs.length ? (Math.min.apply(null, hrs) + Math.max.apply(null, hrs)) / 2 : 70;
    const span = hrs.length ? Math.max(30, Math.max.apply(null, hrs) - Math.min.apply(null, hrs) + 10) : 30;
    $("s-hr").firstElementChild.setAttribute("d", L.sparkPath(r.hr, 160, 36, mid - span / 2, mid + span / 2));
    const nibpAge = r.nibp ? (roomNow(r) - L.parseTs(r.nibp.ts)) / 1000 : null;
    setText("v-nibp-age", r.nibp ? (nibpAge < 90 ? Math.max(0, Math.round(nibpAge)) + " s ago" : Math.round(nibpAge / 60) + " min ago") + " · MAP " + r.nibp.map + (r.nibp.by ? " · by " + r.nibp.by : "") : "no reading");
    const prompts = r.prompts.map((p) => '<li class="prompt' + (p.escalated ? " escalated" : "") + '" data-kind="' + esc(p.kind) + '">' + esc(p.text) +
      ' <span class="muted">since ' + esc(String(p.since || "").slice(11, 19)) + "</span></li>").join("");
    setHtml($("v-prompts"), prompts);
    const limits = L.limitItems(s.alarm_limits);
    for (const vital of ["spo2", "hr", "nibp", "other"]) {
      const html = limits[vital].length ? '<span class="label">' + (vital === "other" ? "Alarms" : "Limits") + "</span> " + limits[vital].map((l) =>
        '<span class="limit' + (l.plan ? " plan" : "") + '" data-code="' + esc(l.code) + '">' + esc(l.text) + (l.plan ? ' <b class="src">plan</b>' : "") + "</span>").join(" · ") : "";
      setHtml($("lim-" + vital), html);
    }
    setText("v-quality", "Oximeter: " + v.quality + (r.vitals && r.vitals.pi !== null && r.vitals.pi !== undefined ? " · PI " + r.vitals.pi : ""));
    const due = L.parseTs(s.next_nibp_due_at);
    setText("v-next-nibp", due ? ((due - roomNow(r)) >= 0 ? "Next NIBP in " + L.fmtDuration((due - roomNow(r)) / 1000) : "NIBP overdue by " + L.fmtDuration((roomNow(r) - due) / 1000)) : "");
    const dev = s.devices || {};
    setText("r-devices", "Devices: " + Object.keys(dev).map((k) => k + " " + dev[k]).join(" · ") + (s.link ? " · link " + (s.link.online ? "online" : "offline") + (s.link.queued ? " (" + s.link.queued + " queued)" : "") : ""));

    // Music and lights.
    const m = s.music || {};
    setText("m-state", (m.mode === "no_music" ? "No-music session" : m.playing ? "Playing: " + (m.track || "?") : "Not playing" + (m.track ? " (" + m.track + ")" : "")));
    for (const out of ["headphones", "speakers"]) {
      const el = $("m-vol-" + out);
      const level = Math.round(100 * (m[out + "_volume"] || 0));
      if (document.activeElement !== el) el.value = level;
      setText("m-vol-" + out + "-v", level + "%");
    }
    const options = r.tracks.length ? r.tracks : [];
    const optKey = options.join("\n");
    if ($("m-track").dataset.key !== optKey) {
      $("m-track").dataset.key = optKey;
      $("m-track").innerHTML = options.length ? options.map((t) => '<option value="' + esc(t) + '">' + esc(t) + "</option>").join("") : '<option value="">(no playlist known)</option>';
    }
    const li = s.lighting || {};
    setText("l-state", "Scene " + (li.scene || "-") + " · " + Math.round(100 * (li.level || 0)) + "%");
    if (document.activeElement !== $("l-level")) $("l-level").value = Math.round(100 * (li.level || 0));
    if (document.activeElement !== $("l-scene") && SCENES.indexOf(li.scene) >= 0 && $("l-scene").dataset.shown !== li.scene) {
      $("l-scene").value = li.scene;
      $("l-scene").dataset.shown = li.scene;
    }
    setText("l-level-v", Math.round(100 * (li.level || 0)) + "%");

    // Replies and events.
    const replies = r.replies.map((e) =>
      '<li class="reply ' + esc(e.state) + '" data-verb="' + esc(e.verb) + '"><span class="mono">' + new Date(e.sentAt).toLocaleTimeString([], { hour12: false }) + "</span> <b>" + esc(e.verb) +
      (e.args && (e.args.item || e.args.action) ? " " + esc(e.args.item || e.args.action) : "") + "</b> → " + esc(e.text) + "</li>").join("");
    setHtml($("r-replies"), replies);
    const events = r.events.slice(-14).reverse().map((e) =>
      '<li class="ev ' + esc(e.type) + '"><span class="mono">#' + e.seq + "</span> " + esc(L.eventText(e)) + "</li>").join("");
    setHtml($("r-events"), events);
    if (window.IntentionsView) window.IntentionsView.draw(r);
  }

  // --- wiring -------------------------------------------------------------------------

  function openRoom(id) {
    app.current = id;
    show("room");
  }

  document.addEventListener("DOMContentLoaded", () => {
    loadForm();
    const sel = $("l-scene");
    sel.innerHTML = SCENES.map((s) => '<option value="' + s + '">' + s + "</option>").join("");
    $("login").addEventListener("submit", login);
    $("back").addEventListener("click", () => { app.current = null; show("overview"); });
    $("logout").addEventListener("click", confirmLogout);
    $("rooms").addEventListener("click", (ev) => {
      const card = ev.target.closest("[data-room]");
      if (card) openRoom(card.dataset.room);
    });
    $("banner").addEventListener("click", (ev) => {
      const line = ev.target.closest("[data-room]");
      if (line) openRoom(line.dataset.room);
    });
    $("room-view").addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-verb]");
      if (!b || b.disabled) return;
      ev.preventDefault();
      startAudio();
      act(b);
    });
    $("record-form").addEventListener("submit", (ev) => ev.preventDefault());
    $("ask-form").addEventListener("submit", answerAsk);
    $("ask-cancel").addEventListener("click", () => { if (app.asking) app.asking(null); });
    for (const out of ["headphones", "speakers"]) {
      $("m-vol-" + out).addEventListener("change", (ev) => {
        if (app.current) request(app.current, "music", { action: "volume", output: out, level: Number(ev.target.value) / 100 });
      });
    }
    $("l-level").addEventListener("change", (ev) => {
      if (app.current) request(app.current, "lights", { level: Number(ev.target.value) / 100 });
    });
    setInterval(render, 1000); // timers, staleness, countdowns
    show("login");
  });
})();
