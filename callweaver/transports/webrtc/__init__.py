"""WebRTC: a browser (or any WebRTC peer) as the caller, with callweaver as the answerer.

``ice`` chooses the addresses ICE gathers on, ``events`` is the data channel's wire format,
``track`` the paced reply-audio track, ``io`` the call's transport over one peer connection.
"""
