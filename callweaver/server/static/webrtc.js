// callweaver's call page: the browser calls the bot over WebRTC (the server answers).
//
// Signalling: one POST of the offer (ICE gathered first: the server does not trickle) to
// ./offer, with the page's query string as the call's parameters. A data channel named
// "events" carries the transcript, the bot's replies and each turn's latency to the page,
// and "hangup" to the server. `window.callweaver` exposes the call's state and what the
// page received (for people debugging, and for the browser test).
"use strict";

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);
const RAW = query.has("raw"); // no echo cancellation, noise suppression or gain control
const VOICED_RMS = 0.01; // a 128-sample block this loud counts as received speech
const KEEP_SECONDS = 60; // received audio kept for inspection

const state = {
  status: "idle",
  callId: null,
  events: [],
  latencies: [],
  received: { seconds: 0, voicedSeconds: 0, sumSquares: 0, peak: 0, sampleRate: 0 },
  samples: [],
  endedReason: null,
};
window.callweaver = {
  state,
  receivedRms() {
    const n = state.received.seconds * state.received.sampleRate;
    return n ? Math.sqrt(state.received.sumSquares / n) : 0;
  },
  receivedAudio() { // Float32 samples at state.received.sampleRate, as base64
    const total = state.samples.reduce((n, a) => n + a.length, 0);
    const all = new Float32Array(total);
    let at = 0;
    for (const a of state.samples) { all.set(a, at); at += a.length; }
    let text = "";
    const bytes = new Uint8Array(all.buffer);
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  },
  call: () => start(),
  hangup: () => hangup("hung up"),
};

let pc = null;
let channel = null;
let audioContext = null;
let mic = null;
let interim = null;

function setStatus(text) {
  state.status = text;
  $("status").textContent = text;
}

function line(cls, text) {
  const li = document.createElement("li");
  li.className = cls;
  li.textContent = text;
  $("log").append(li);
  li.scrollIntoView({ block: "nearest" });
  return li;
}

const METER = `
class Meter extends AudioWorkletProcessor {
  process(inputs) {
    const input = inputs[0];
    if (input && input.length) this.port.postMessage(input[0].slice());
    return true;
  }
}
registerProcessor("callweaver-meter", Meter);`;

async function measure(stream) {
  // The bot's voice plays through the <audio> element; this taps a copy to measure it.
  audioContext = new AudioContext();
  const url = URL.createObjectURL(new Blob([METER], { type: "text/javascript" }));
  await audioContext.audioWorklet.addModule(url);
  const source = audioContext.createMediaStreamSource(stream);
  const meter = new AudioWorkletNode(audioContext, "callweaver-meter");
  const mute = audioContext.createGain();
  mute.gain.value = 0;
  source.connect(meter).connect(mute).connect(audioContext.destination);
  const r = state.received;
  r.sampleRate = audioContext.sampleRate;
  let kept = 0;
  meter.port.onmessage = ({ data }) => {
    let sum = 0;
    let peak = 0;
    for (const x of data) { sum += x * x; peak = Math.max(peak, Math.abs(x)); }
    const seconds = data.length / r.sampleRate;
    r.seconds += seconds;
    r.sumSquares += sum;
    r.peak = Math.max(r.peak, peak);
    const rms = Math.sqrt(sum / data.length);
    if (rms >= VOICED_RMS) r.voicedSeconds += seconds;
    $("level").value = rms;
    if (kept < KEEP_SECONDS * r.sampleRate) { state.samples.push(data); kept += data.length; }
  };
}

function onEvent(message) {
  state.events.push(message);
  switch (message.type) {
    case "call":
      state.callId = message.call_id;
      break;
    case "transcript":
      if (!interim) interim = line("caller interim", "");
      interim.textContent = message.text;
      if (message.final) { interim.className = "caller"; interim = null; }
      break;
    case "reply":
      line("bot", message.text);
      break;
    case "interrupted":
      line("note", "(interrupted)");
      break;
    case "latency":
      state.latencies.push(message.voice_to_voice_ms);
      line("note", `voice-to-voice ${Math.round(message.voice_to_voice_ms)} ms`);
      break;
    case "ended":
      state.endedReason = message.reason;
      break;
  }
}

function gathered(peer) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    peer.addEventListener("icegatheringstatechange", () => {
      if (peer.iceGatheringState === "complete") resolve();
    });
  });
}

async function start() {
  if (pc) return;
  const button = $("call");
  button.disabled = true;
  setStatus("starting the microphone");
  try {
    const processing = !RAW;
    mic = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: processing, noiseSuppression: processing, autoGainControl: processing },
    });
    pc = new RTCPeerConnection();
    channel = pc.createDataChannel("events");
    channel.onmessage = (e) => onEvent(JSON.parse(e.data));
    for (const track of mic.getAudioTracks()) pc.addTrack(track, mic);
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      $("voice").srcObject = stream;
      measure(stream).catch((err) => line("note", `meter: ${err}`));
    };
    pc.onconnectionstatechange = () => {
      const s = pc && pc.connectionState;
      if (s === "connected") setStatus("connected");
      if (s === "failed" || s === "closed" || s === "disconnected") hangup(state.endedReason || `connection ${s}`);
    };
    setStatus("connecting");
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const parameters = Object.fromEntries([...query].filter(([k]) => k !== "raw"));
    const response = await fetch("offer", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp, parameters }),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(`${answer.error}: ${answer.detail || response.status}`);
    state.callId = answer.call_id;
    await pc.setRemoteDescription(answer);
    button.textContent = "Hang up";
    button.className = "live";
    button.disabled = false;
  } catch (err) {
    hangup(`failed: ${err.message || err}`);
  }
}

function hangup(why) {
  if (!pc && !mic) return;
  if (channel && channel.readyState === "open") channel.send(JSON.stringify({ type: "hangup" }));
  if (pc) pc.close();
  if (mic) for (const track of mic.getTracks()) track.stop();
  if (audioContext) audioContext.close();
  pc = channel = mic = audioContext = null;
  interim = null;
  setStatus(why);
  const button = $("call");
  button.textContent = "Call";
  button.className = "";
  button.disabled = false;
}

$("call").addEventListener("click", () => (pc ? hangup("hung up") : start()));
window.addEventListener("pagehide", () => hangup("page closed"));
