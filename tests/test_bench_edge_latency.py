"""The edge-latency benchmark still runs: one turn through each transport (file, Twilio Media
Streams and WebRTC over real sockets) yields every voice-to-voice figure it reports."""

from bench.edge_latency import quick


def test_one_turn_per_transport_yields_every_figure() -> None:
    summary = quick()
    kinds = ("v2v", "server_edge", "peer_edge")
    figures = [f"{t}_{f}" for t in ("twilio", "webrtc") for f in kinds]
    for key in ("file_v2v", *figures):
        assert summary[key]["n"] == 1, (key, summary[key])
        assert summary[key]["p50"] > 0, (key, summary[key])
    assert summary["twilio_peer_edge"]["minus_file_p50"] is not None
    assert summary["webrtc_peer_edge"]["minus_file_p50"] is not None
