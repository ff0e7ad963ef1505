"""Scripted calls to a clinic's front desk, for the response cache's hit rate: what callers say,
turn by turn, and which reply each turn needs.

Written as an ASR writes (often lowercase, no punctuation), before any measuring, and not
changed after: callers rephrase the common questions (the cache's reason to exist), ask near
misses whose reply is another one (Saturday vs Sunday, opening vs closing time, book vs
cancel vs move, today vs tomorrow), give personal data, ask follow-ups that lean on the turn
before ("how much is it", "and on Saturday?"), and say short things ("yes please"). Each turn
names its ``intent``; ``also`` lists other intents whose reply answers it too (the general
hours answer a Saturday question). Turns whose right reply is this caller's own have an
intent of their own (``own-...``): any cached reply to them is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CALLS", "REPLIES", "Turn"]


@dataclass(frozen=True, slots=True)
class Turn:
    text: str
    intent: str
    also: tuple[str, ...] = ()
    language: str = "en"


def _t(text: str, intent: str, *also: str) -> Turn:
    return Turn(text, intent, also)


def _es(text: str, intent: str, *also: str) -> Turn:
    return Turn(text, intent, also, "es")


HOURS = ("hours",)

REPLIES: dict[str, str] = {
    "hours": "We're open Monday to Friday from eight in the morning to six in the evening, "
    "and on Saturday from nine to one. We're closed on Sunday.",
    "hours-saturday": "On Saturday we're open from nine in the morning to one in the afternoon.",
    "hours-sunday": "We're closed on Sunday; the nearest emergency clinic is open all day.",
    "open-time": "We open at eight in the morning on weekdays.",
    "close-time": "We close at six in the evening on weekdays.",
    "close-saturday": "On Saturday we close at one in the afternoon.",
    "open-today": "Yes, we're open today until six this evening.",
    "address": "We're at 42 Harbour Street, on the second floor, next to the pharmacy.",
    "parking": "There's free parking behind the building for up to two hours.",
    "insurance": "We accept most major insurance plans. Please bring your insurance card.",
    "book": "Of course. Which day suits you, and is it for a check-up or something specific?",
    "cancel": "No problem. Please tell me your name and the date of the appointment.",
    "reschedule": "Sure. Which appointment would you like to move, and to which day?",
    "human": "I'll put you through to the front desk now. Please hold for a moment.",
    "walk-in": "We see walk-in patients in the morning, but booking is quicker.",
    "price": "A standard visit without insurance costs sixty dollars.",
    "vaccine": "Yes, we give flu shots every weekday morning; no appointment is needed.",
    "children": "Yes, our doctors see children of every age.",
    "es-hours": "Abrimos de lunes a viernes de ocho a seis, y los sábados de nueve a una.",
    "es-address": "Estamos en la calle Harbour número 42, en el segundo piso.",
    "es-parking": "Hay aparcamiento gratuito detrás del edificio durante dos horas.",
    "es-book": "Claro. ¿Qué día le viene bien?",
    "es-cancel": "De acuerdo. ¿A nombre de quién está la cita y qué día es?",
    "es-hours-sunday": "Los domingos estamos cerrados.",
}

CALLS: tuple[tuple[Turn, ...], ...] = (
    (
        _t("hi what are your opening hours", "hours"),
        _t("and where are you located", "address"),
        _t("is there parking there", "own-parking-there"),
        _t("ok thanks bye", "own-bye-1"),
    ),
    (
        _t("Hello, when are you open?", "hours"),
        _t("Is there parking at the clinic?", "parking"),
        _t("great thank you", "own-thanks-2"),
    ),
    (
        _t("what time do you close on saturday", "close-saturday", "hours-saturday", *HOURS),
        _t("What are your hours?", "hours"),
        _t("I'd like to book an appointment", "book"),
        _t("my name is Maria Lopez and Tuesday works", "own-maria"),
    ),
    (
        _t("what are your opening times", "hours"),
        _t("are you open on saturday", "hours-saturday", *HOURS),
        _t("what's your address", "address"),
        _t("where can i park", "parking"),
    ),
    (
        _t("I need to cancel my appointment", "cancel"),
        _t("it's under John Peters for Thursday", "own-john"),
        _t("and can i book a new one for next week", "own-rebook"),
    ),
    (
        _t("do you take my insurance", "insurance"),
        _t("How much is a visit without insurance?", "price"),
        _t("ok and what time do you open", "own-open-followup"),
        _t("thanks", "own-thanks-6"),
    ),
    (
        _t("when are you guys open", "hours"),
        _t("are you open on sunday", "hours-sunday"),
        _t("what time do you close", "close-time", *HOURS),
    ),
    (
        _t("where is the clinic", "address"),
        _t("is there somewhere to park", "parking"),
        _t("can i talk to a real person please", "human"),
    ),
    (
        _t("what time do you open", "open-time", *HOURS),
        _t("what time do you close on saturday", "close-saturday", "hours-saturday", *HOURS),
        _t("are you open today", "open-today", *HOURS),
    ),
    (
        _t("hi i want to book an appointment", "book"),
        _t("i need to cancel my appointment", "cancel"),
        _t("can I move my appointment to another day", "reschedule"),
        _t("yes please", "own-yes-10"),
    ),
    (
        _t("What are your opening hours?", "hours"),
        _t("do you accept insurance", "insurance"),
        _t("do you see children", "children"),
        _t("my daughter's date of birth is 4 March 2019", "own-dob"),
    ),
    (
        _t("are you open tomorrow", "own-open-tomorrow", *HOURS),
        _t("what's the address of the clinic", "address"),
        _t("is parking free", "parking"),
    ),
    (
        _t("do you give flu shots", "vaccine"),
        _t("how much does it cost", "own-cost-followup"),
        _t("can i just walk in", "walk-in"),
        _t("ok bye", "own-bye-13"),
    ),
    (
        _t("when do you open", "open-time", *HOURS),
        _t("what are your hours on saturday", "hours-saturday", "close-saturday", *HOURS),
        _t("where can I park my car", "parking"),
        _t("put me through to reception", "human"),
    ),
    (
        _t("i'd like to make an appointment", "book"),
        _t("please call me back on 555 0142 7788", "own-phone"),
        _t("what are your opening hours please", "hours"),
    ),
    (
        _t("I want to cancel my appointment please", "cancel"),
        _t("actually can I reschedule it instead", "own-reschedule-it"),
        _t("are you open on sunday", "hours-sunday"),
    ),
    (
        _t("what is your address", "address"),
        _t("when are you open", "hours"),
        _t("do you take walk ins", "walk-in"),
        _t("do you accept my insurance", "insurance"),
    ),
    (
        _t("Can I speak to someone at the front desk?", "human"),
        _t("what time do you close", "close-time", *HOURS),
        _t("and on saturday?", "own-and-saturday"),
    ),
    (
        _es("hola a qué hora abren", "es-hours"),
        _es("dónde están ubicados", "es-address"),
        _es("hay aparcamiento", "es-parking"),
    ),
    (
        _es("quiero pedir una cita", "es-book"),
        _es("me llamo Ana Ruiz y prefiero el martes", "own-ana"),
        _es("cuál es su horario", "es-hours"),
    ),
    (
        _es("cuál es su horario de atención", "es-hours"),
        _es("abren los domingos", "es-hours-sunday"),
        _es("necesito cancelar mi cita", "es-cancel"),
        _es("dónde puedo aparcar", "es-parking"),
    ),
    (
        _es("a qué hora abren", "es-hours"),
        _es("quiero cancelar mi cita", "es-cancel"),
        _es("dónde está la clínica", "es-address"),
    ),
)
