"""The edge-latency benchmark still runs: one turn through each transport (file, and Twilio
Media Streams over real sockets) yields every voice-to-voice figure it reports."""

from bench.edge_latency import quick


def test_one_turn_per_transport_yields_every_figure() -> None:
    summary = quick()
    for key in ("file_v2v", "twilio_v2v", "twilio_server_edge", "twilio_peer_edge"):
        assert summary[key]["n"] == 1, (key, summary[key])
        assert summary[key]["p50"] > 0, (key, summary[key])
    assert summary["twilio_peer_edge"]["minus_file_p50"] is not None
