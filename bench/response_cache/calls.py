"""Scripted calls to a clinic's front desk, for the response cache's hit rate: what callers say,
turn by turn, and which reply each turn needs.

The clinic is ``configs/llm.yaml``'s: open Monday to Friday 8 to 18, Saturday 9 to 13, closed
on Sunday; 42 Harbour Street, second floor, next to the pharmacy; free parking behind the
building for two hours; most insurance plans; appointments booked, cancelled and moved; a
person on request. The calls happen on one weekday.

Written as an ASR writes (often lowercase, no punctuation). Callers rephrase the common
questions (the cache's reason to exist), ask near misses whose reply is another one (Saturday
vs Sunday, opening vs closing time, book vs cancel vs move, today vs tomorrow, two children vs
one appointment), give personal data (names, a phone number, dates of birth), ask follow-ups
that lean on the turn before ("how much does it cost", "and on saturday?") and say short
things ("yes please", "thanks bye").

Each turn names its ``intent``: a stable id for a question any caller may ask (``hours``,
``close_saturday``, ``es_parking``...), or one of its own for a turn whose right reply is this
caller's (``personal-N``, ``followup-N``, ``short-N``): any cached reply to those is wrong,
unless ``also`` names an intent whose reply answers it too (the general opening hours answer
"are you open on saturday"; the parking reply answers "is there parking there").

Provenance: the first :data:`TUNED_ON` calls were written first, and the learned-reply
thresholds of :data:`callweaver.services.cache.response.LEARNED_THRESHOLDS` were set after
measuring them; the calls after them were written later and fixed before being measured.
No text was changed after measuring. One label was: "hello is the clinic open right now"
accepts the general opening hours too, as "are you open today" always did (it had been
written without them, and the first measurement counted the hours reply as wrong).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CALLS", "REPLIES", "TUNED_ON", "Turn", "by_text", "reply_of"]


@dataclass(frozen=True, slots=True)
class Turn:
    """What a caller says in one turn, the intent whose reply it needs, its language, and the
    other intents whose replies answer it as well."""

    text: str
    intent: str
    language: str = "en"
    also: tuple[str, ...] = ()

    @property
    def own(self) -> bool:
        """Is the right reply this caller's own (personal data, a follow-up, a short answer)?"""
        return self.intent.startswith(("personal-", "followup-", "short-"))


def _t(text: str, intent: str, *also: str) -> Turn:
    return Turn(text, intent, "en", also)


def _es(text: str, intent: str, *also: str) -> Turn:
    return Turn(text, intent, "es", also)


HOURS = ("hours",)
ES_HOURS = ("es_hours",)

#: The reply an LLM given configs/llm.yaml's prompt would speak, per intent. The ``hours``,
#: ``address`` and ``parking`` replies are also configs/llm-cached.yaml's declared answers.
REPLIES: dict[str, str] = {
    # questions any caller may ask
    "hours": "We're open Monday to Friday from eight in the morning to six in the evening, "
    "and on Saturday from nine to one. We're closed on Sunday.",
    "hours_saturday": "On Saturday we're open from nine in the morning to one in the afternoon.",
    "hours_sunday": "We're closed on Sunday; the nearest emergency clinic is open all day.",
    "open_time": "We open at eight in the morning on weekdays.",
    "open_saturday": "On Saturday we open at nine in the morning.",
    "close_time": "We close at six in the evening on weekdays.",
    "close_today": "We close at six this evening.",
    "close_saturday": "On Saturday we close at one in the afternoon.",
    "open_today": "Yes, we're open today until six this evening.",
    "open_now": "Yes, we're open right now, until six this evening.",
    "open_tomorrow": "Yes, tomorrow we're open from eight in the morning to six in the evening.",
    "address": "We're at 42 Harbour Street, on the second floor, next to the pharmacy.",
    "parking": "There's free parking behind the building for up to two hours.",
    "insurance": "We accept most major insurance plans. Please bring your insurance card.",
    "first_visit": "Please bring your insurance card and a photo ID, and come ten minutes "
    "early to fill in a short form.",
    "book": "Of course. Which day suits you, and is it for a check-up or something specific?",
    "book_saturday": "Yes, we have appointments on Saturday mornings. Could I have your name, "
    "please?",
    "book_two": "Of course, I can book two appointments back to back. Which day suits you?",
    "cancel": "No problem. Please tell me your name and the date of the appointment.",
    "cancel_tomorrow": "No problem. What name is tomorrow's appointment under?",
    "reschedule": "Sure. Which appointment would you like to move, and to which day?",
    "reschedule_monday": "Sure, I can look at Monday for you. What name is the appointment under?",
    "human": "I'll put you through to the front desk now. Please hold for a moment.",
    "walk_in": "We see walk-in patients in the morning, but booking is quicker.",
    "price": "A standard visit without insurance costs sixty dollars.",
    "flu_shot": "Yes, we give flu shots every weekday morning; no appointment is needed.",
    "children": "Yes, our doctors see children of every age.",
    "bus": "I'm not sure about the bus routes, I'm afraid. Would you like me to put you "
    "through to the front desk?",
    "thanks": "You're welcome. Have a good day!",
    "es_hours": "Abrimos de lunes a viernes de ocho a seis, y los sábados de nueve a una.",
    "es_hours_saturday": "Los sábados abrimos de nueve a una.",
    "es_hours_sunday": "Los domingos estamos cerrados.",
    "es_address": "Estamos en la calle Harbour número 42, en el segundo piso.",
    "es_parking": "Hay aparcamiento gratuito detrás del edificio durante dos horas.",
    "es_book": "Claro. ¿Qué día le viene bien?",
    "es_cancel": "De acuerdo. ¿A nombre de quién está la cita y qué día es?",
    "es_reschedule": "Claro. ¿Qué cita quiere cambiar, y a qué día?",
    "es_thanks": "De nada. ¡Que tenga un buen día!",
    # this caller's own
    "personal-1": "Thank you, Maria. I have you down for Tuesday at ten in the morning.",
    "personal-2": "Thank you. I've cancelled Mr Peters' appointment on Thursday.",
    "personal-3": "Thank you. I've noted her date of birth; which day would suit you?",
    "personal-4": "Thank you, I've noted your number; the front desk will call you back today.",
    "personal-5": "Gracias, Ana. Le apunto el martes a las diez de la mañana.",
    "personal-6": "Thank you, Mr Chen. Saturday at ten in the morning is free; shall I book it?",
    "personal-7": "Thank you, I've found Mr Novak's appointment tomorrow at half past ten and "
    "cancelled it.",
    "personal-8": "Yes, bring him in this morning; a doctor will see him. What's his name?",
    "followup-1": "Yes, there's free parking behind the building for up to two hours.",
    "followup-2": "Of course. Which day next week suits you?",
    "followup-3": "We open at eight in the morning.",
    "followup-4": "The flu shot is free with most insurance plans, and twenty dollars without.",
    "followup-5": "Of course. Which day would you like to move it to?",
    "followup-6": "On Saturday we close at one in the afternoon.",
    "followup-7": "On Saturday we close at one in the afternoon.",
    "followup-8": "Yes, we have two appointments free on Saturday at half past nine.",
    "followup-9": "Yes, there's a free slot on Monday at three in the afternoon.",
    "followup-10": "No, you don't need an appointment for a flu shot; just come in the morning.",
    "followup-11": "Los sábados cerramos a la una.",
    "short-1": "Great. Could I have your name, please?",
    "short-2": "Perfect. Could I have the children's names, please?",
}

CALLS: tuple[tuple[Turn, ...], ...] = (
    # -- the first batch (see the module docstring) -----------------------------------------
    (
        _t("hi what are your opening hours", "hours"),
        _t("and where are you located", "address"),
        _t("is there parking there", "followup-1", "parking"),
        _t("ok thanks bye", "thanks"),
    ),
    (
        _t("Hello, when are you open?", "hours"),
        _t("Is there parking at the clinic?", "parking"),
        _t("great thank you", "thanks"),
    ),
    (
        _t("what time do you close on saturday", "close_saturday", "hours_saturday", *HOURS),
        _t("What are your hours?", "hours"),
        _t("I'd like to book an appointment", "book"),
        _t("my name is Maria Lopez and Tuesday works", "personal-1"),
    ),
    (
        _t("what are your opening times", "hours"),
        _t("are you open on saturday", "hours_saturday", *HOURS),
        _t("what's your address", "address"),
        _t("where can i park", "parking"),
    ),
    (
        _t("I need to cancel my appointment", "cancel"),
        _t("it's under John Peters for Thursday", "personal-2"),
        _t("and can i book a new one for next week", "followup-2"),
    ),
    (
        _t("do you take my insurance", "insurance"),
        _t("How much is a visit without insurance?", "price"),
        _t("ok and what time do you open", "followup-3", "open_time", *HOURS),
        _t("thanks", "thanks"),
    ),
    (
        _t("when are you guys open", "hours"),
        _t("are you open on sunday", "hours_sunday"),
        _t("what time do you close", "close_time", *HOURS),
    ),
    (
        _t("where is the clinic", "address"),
        _t("is there somewhere to park", "parking"),
        _t("can i talk to a real person please", "human"),
    ),
    (
        _t("what time do you open", "open_time", *HOURS),
        _t("what time do you close on saturday", "close_saturday", "hours_saturday", *HOURS),
        _t("are you open today", "open_today", *HOURS),
    ),
    (
        _t("hi i want to book an appointment", "book"),
        _t("i need to cancel my appointment", "cancel"),
        _t("can I move my appointment to another day", "reschedule"),
        _t("yes please", "short-1"),
    ),
    (
        _t("What are your opening hours?", "hours"),
        _t("do you accept insurance", "insurance"),
        _t("do you see children", "children"),
        _t("my daughter's date of birth is 4 March 2019", "personal-3"),
    ),
    (
        _t("are you open tomorrow", "open_tomorrow", *HOURS),
        _t("what's the address of the clinic", "address"),
        _t("is parking free", "parking"),
    ),
    (
        _t("do you give flu shots", "flu_shot"),
        _t("how much does it cost", "followup-4"),
        _t("can i just walk in", "walk_in"),
        _t("ok bye", "thanks"),
    ),
    (
        _t("when do you open", "open_time", *HOURS),
        _t("what are your hours on saturday", "hours_saturday", "close_saturday", *HOURS),
        _t("where can I park my car", "parking"),
        _t("put me through to reception", "human"),
    ),
    (
        _t("i'd like to make an appointment", "book"),
        _t("please call me back on 555 0142 7788", "personal-4"),
        _t("what are your opening hours please", "hours"),
    ),
    (
        _t("I want to cancel my appointment please", "cancel"),
        _t("actually can I reschedule it instead", "followup-5"),
        _t("are you open on sunday", "hours_sunday"),
    ),
    (
        _t("what is your address", "address"),
        _t("when are you open", "hours"),
        _t("do you take walk ins", "walk_in"),
        _t("do you accept my insurance", "insurance"),
    ),
    (
        _t("Can I speak to someone at the front desk?", "human"),
        _t("what time do you close", "close_time", *HOURS),
        _t("and on saturday?", "followup-6", "close_saturday"),
    ),
    (
        _es("hola a qué hora abren", "es_hours"),
        _es("dónde están ubicados", "es_address"),
        _es("hay aparcamiento", "es_parking"),
    ),
    (
        _es("quiero pedir una cita", "es_book"),
        _es("me llamo Ana Ruiz y prefiero el martes", "personal-5"),
        _es("cuál es su horario", "es_hours"),
    ),
    (
        _es("cuál es su horario de atención", "es_hours"),
        _es("abren los domingos", "es_hours_sunday"),
        _es("necesito cancelar mi cita", "es_cancel"),
        _es("dónde puedo aparcar", "es_parking"),
    ),
    (
        _es("a qué hora abren", "es_hours"),
        _es("quiero cancelar mi cita", "es_cancel"),
        _es("dónde está la clínica", "es_address"),
    ),
    # -- written later, not measured before being fixed --------------------------------------
    (
        _t("good morning do you take blue cross insurance", "insurance"),
        _t("what do i need to bring to my first appointment", "first_visit"),
        _t("ok great thanks bye", "thanks"),
    ),
    (
        _t("what time do you open on saturday", "open_saturday", "hours_saturday", *HOURS),
        _t("and what time do you close", "followup-7", "close_saturday", "hours_saturday"),
        _t("can i book something for saturday morning", "book_saturday"),
        _t("my name is David Chen date of birth 12 June 1985", "personal-6"),
    ),
    (
        _t("hi i need appointments for my two kids", "book_two"),
        _t("is saturday possible", "followup-8"),
        _t("perfect yes please", "short-2"),
    ),
    (
        _t("hello is the clinic open right now", "open_now", "open_today", *HOURS),
        _t("where exactly is the building", "address"),
        _t("how long can i park for", "parking"),
    ),
    (
        _t("I'd like to cancel my appointment for tomorrow", "cancel_tomorrow", "cancel"),
        _t("it's for Peter Novak at half past ten", "personal-7"),
        _t("thanks bye", "thanks"),
    ),
    (
        _t("can i change my appointment to next monday", "reschedule_monday", "reschedule"),
        _t("do you have anything in the afternoon", "followup-9"),
        _t("can i speak to a receptionist", "human"),
    ),
    (
        _t("how do i get there by bus", "bus"),
        _t("what floor are you on", "address"),
        _t("is the parking free", "parking"),
        _t("what time do you close today", "close_today", "close_time", *HOURS),
    ),
    (
        _t("hi do you do flu shots", "flu_shot"),
        _t("do i need an appointment for that", "followup-10"),
        _t("are you open on sunday", "hours_sunday"),
    ),
    (
        _t("do you see kids", "children"),
        _t("my son is 6 and has a cough can i bring him in today", "personal-8"),
        _t("can i talk to a nurse", "human"),
    ),
    (
        _t("what are your opening hours on saturday", "hours_saturday", *HOURS),
        _t("where do i park", "parking"),
        _t("I want to book an appointment for next week", "book"),
    ),
    (
        _es("abren los sábados", "es_hours_saturday", *ES_HOURS),
        _es("y a qué hora cierran", "followup-11"),
        _es("necesito cambiar mi cita", "es_reschedule"),
        _es("muchas gracias adiós", "es_thanks"),
    ),
)

#: How many of :data:`CALLS` were written first (see the module docstring).
TUNED_ON = 22


def reply_of(turn: Turn) -> str:
    """The reply the turn needs (what the fake LLM answers it)."""
    return REPLIES[turn.intent]


def by_text() -> dict[str, str]:
    """Each caller text's reply; raises ValueError when one text has two intents (the fake
    LLM answers by the text alone)."""
    out: dict[str, str] = {}
    for call in CALLS:
        for turn in call:
            reply = reply_of(turn)
            if out.setdefault(turn.text, reply) != reply:
                raise ValueError(f"{turn.text!r} has two replies")
    return out
