"""Failover: several providers of a stage behind the interface of one.

``FailoverTTS([piper, flite])`` is a :class:`~callweaver.services.tts.TTS`, ``FailoverSTT``
an :class:`~callweaver.services.stt.STT` and ``FailoverLLM`` an
:class:`~callweaver.services.llm.LLM`: a node holds one provider and never knows whether it
is a wrapper. For each request the wrapper tries its providers in order:

- a provider whose circuit breaker (:mod:`callweaver.services.health`, shared by every call
  of the process) is open is skipped at no cost, and so is one that cannot speak the
  request's language (``languages`` attribute; not a failure);
- an error, or no first result within the first-result timeout (the first audio chunk, the
  first token, the whole transcript), moves the same request to the next provider: the
  caller hears no gap beyond that timeout;
- TTS audio is checked before it is let through: noise, clipped audio or silence is a
  failure (:mod:`.tts`);
- after a switch, the provider that took over stays first for this wrapper's (the call's)
  later requests until the breakers' ``reset_after_s`` has passed, then the configured order
  is tried again (failback) (:mod:`.base`);
- once a stream has delivered its first result the request stays with that provider: a later
  failure is recorded on its breaker and raised (:mod:`.streams`); the one exception is a TTS
  text stream, which the next provider takes over at a sentence boundary (:mod:`.tts`);
- TTS hedging (``hedge_after_s``): a provider slow to its first audio gets company on the
  same sentence, and the first to pass wins (:mod:`.streams`);
- an STT stream that fails hands the whole utterance to the next providers' ``transcribe``
  (:mod:`.stt`);
- when every provider failed or was skipped, :class:`~callweaver.errors.ProvidersExhausted`
  says what each one did; the node then falls back (spoken fallback audio, a fallback reply).

Each move from one provider to the next is reported to ``on_switch`` (the nodes turn it into
a metric and a log line with the call id) and counted in :attr:`Failover.switches`.

The modules, each importing only those before it:

- :mod:`.base`: :class:`Failover` (order, breakers, languages, failback, switch reports,
  ``warm``, ``aclose``) and :class:`Switch`;
- :mod:`.stt`: :class:`FailoverSTT` and its streaming :class:`FailoverSTTStream`;
- :mod:`.streams`: a stream's first-result timeout, check and hedging, and
  :class:`FailoverLLM`;
- :mod:`.tts`: :class:`FailoverTTS`: the audio check and text streams.
"""

from callweaver.services.failover.base import Failover, Switch, SwitchObserver
from callweaver.services.failover.streams import FailoverLLM
from callweaver.services.failover.stt import FailoverSTT, FailoverSTTStream
from callweaver.services.failover.tts import FailoverTTS

__all__ = [
    "Failover",
    "FailoverLLM",
    "FailoverSTT",
    "FailoverSTTStream",
    "FailoverTTS",
    "Switch",
    "SwitchObserver",
]
