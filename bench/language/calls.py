# ruff: noqa: RUF001
# (full-width Chinese and Japanese punctuation, and Cyrillic, are what this data is about)
"""The scripted calls of the language data set: :data:`CALLS`, each a :class:`Call`. How
their labels were decided: :mod:`bench.language.utterances`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["CALLS", "Call"]


@dataclass(frozen=True, slots=True)
class Call:
    """One scripted call: the deployment's default locale and the locales it speaks, and each
    caller turn with the locale the call should be in after it."""

    name: str
    default: str
    allowed: tuple[str, ...]
    turns: tuple[tuple[str, str], ...]


CALLS: Final[tuple[Call, ...]] = (
    Call(
        name="spanish caller on an English line",
        default="en-US",
        allowed=("en-US", "es-US", "zh-HK", "pt-BR"),
        turns=(
            # the first Spanish turn of 3+ words: one in a row, the call stays
            ("Hola, buenas tardes, ¿es la clínica del doctor Miller?", "en-US"),
            # the second in a row: the call moves
            ("Quería hacer una cita para mi esposo, por favor.", "es-US"),
            ("Sí", "es-US"),
            ("Se llama Roberto Salinas.", "es-US"),
            # spelled letters: no language
            ("S A L I N A S", "es-US"),
            ("OK", "es-US"),
            ("Tiene dolor en una muela desde el sábado.", "es-US"),
            ("¿Para cuándo tienen algo?", "es-US"),
            ("El jueves está bien.", "es-US"),
            ("¿A las diez de la mañana?", "es-US"),
            ("Perfecto.", "es-US"),
            ("¿Me pueden mandar la confirmación por email?", "es-US"),
            ("Sí, por email.", "es-US"),
            ("Es roberto.salinas78@gmail.com.", "es-US"),
            ("Okay", "es-US"),
            ("Yes", "es-US"),  # an English word from a Spanish speaker: short, never moves
            ("¿Y cuánto cuesta la consulta sin seguro?", "es-US"),
            ("Ah, OK, está bien.", "es-US"),
            ("¿Aceptan tarjeta de crédito?", "es-US"),
            ("Thank you very much.", "es-US"),  # one English turn of 3+ words: not two in a row
            ("Adiós, que le vaya bien.", "es-US"),  # Spanish again: the count resets
        ),
    ),
    Call(
        name="asks to speak Spanish",
        default="en-US",
        allowed=("en-US", "es-US"),
        turns=(
            ("Hi, um, I call for my appointment.", "en-US"),
            ("Can we speak Spanish?", "es-US"),  # an explicit request: at once
            ("Ay, gracias. Mire, tengo una cita el lunes pero no puedo ir.", "es-US"),
            ("¿Se puede cambiar para el miércoles?", "es-US"),
            ("En la tarde, después de las tres.", "es-US"),
            ("Sí, a las cuatro está perfecto.", "es-US"),
            ("Mi nombre es Guadalupe Torres.", "es-US"),
            ("Torres, T O R R E S.", "es-US"),
            ("Mhm", "es-US"),
            ("¿Tengo que llevar algo?", "es-US"),
            ("¿Los papeles del seguro?", "es-US"),
            ("OK, OK", "es-US"),
            ("¿Y dónde me estaciono?", "es-US"),
            ("¿Atrás del edificio?", "es-US"),
            ("Ah, ya sé cuál es.", "es-US"),
            ("Otra pregunta, ¿mi hija también puede sacar cita?", "es-US"),
            ("Tiene seis años.", "es-US"),
            ("El mismo día, si se puede.", "es-US"),
            ("Ándale, muchas gracias.", "es-US"),
            ("Bye, bye.", "es-US"),
        ),
    ),
    Call(
        name="asks to speak English",
        default="es-MX",
        allowed=("es-MX", "en-US"),
        turns=(
            ("Bueno, sí, buenas tardes.", "es-MX"),
            ("Disculpe, ¿podemos hablar en inglés?", "en-US"),  # an explicit request: at once
            ("Oh, thank you, my Spanish is pretty basic.", "en-US"),
            ("I'm staying in San Miguel and I need to refill a prescription.", "en-US"),
            ("It's for blood pressure, losartan, fifty milligrams.", "en-US"),
            ("Do I need a prescription from a Mexican doctor for that?", "en-US"),
            ("Sí", "en-US"),  # short: never moves
            ("Oh, OK, that's easy then.", "en-US"),
            ("Do you have it in stock right now?", "en-US"),
            ("Great. How much is a box of thirty?", "en-US"),
            ("Pesos or dollars?", "en-US"),
            ("Perfecto.", "en-US"),  # short
            # to his wife: one Spanish turn of 3+ words, not two in a row
            ("Amor, ¿tienes la receta en tu bolsa?", "en-US"),
            ("Sorry, my wife has the paperwork.", "en-US"),  # English: the count resets
            ("What time do you close today?", "en-US"),
            ("And where exactly are you, near the Jardín?", "en-US"),
            ("Next to the bakery, got it.", "en-US"),
            ("Can you hold it under the name Harris? H A R R I S.", "en-US"),
            ("Gracias, muy amable.", "en-US"),  # one Spanish turn of 3 words: not two in a row
            ("We'll be there in about an hour, thank you.", "en-US"),
        ),
    ),
    Call(
        name="Cantonese caller with English words, Hong Kong line",
        default="zh-HK",
        allowed=("zh-HK", "en-GB", "zh-CN"),
        turns=(
            ("喂，你好，係咪卓越牙科呀？", "zh-HK"),
            ("我想 book 個 appointment 洗牙。", "zh-HK"),
            ("下個禮拜三得唔得？", "zh-HK"),
            ("Morning 好啲，我下晝要返工。", "zh-HK"),
            ("十點半？OK。", "zh-HK"),
            ("我姓李，李小明。", "zh-HK"),
            ("電話係九一二三 四五六七。", "zh-HK"),
            ("Yes", "zh-HK"),
            ("我之前喺你哋度做過一次 check-up。", "zh-HK"),
            ("係，大概兩年前。", "zh-HK"),
            ("可唔可以 send 個 confirmation 嘅 SMS 畀我？", "zh-HK"),
            ("OK，唔該。", "zh-HK"),
            ("收唔收 credit card 㗎？", "zh-HK"),
            ("咁八達通呢？", "zh-HK"),
            ("Sorry，我想問埋，有冇得泊車？", "zh-HK"),
            ("Thank you", "zh-HK"),
            # one English turn of 3+ words: not two in a row
            ("Can I also bring my son?", "zh-HK"),
            ("佢八歲，都想洗埋牙。", "zh-HK"),  # Cantonese: the count resets
            ("同一日，一齊 book 得唔得？", "zh-HK"),
            ("好，唔該晒你。Bye bye。", "zh-HK"),
        ),
    ),
    Call(
        name="Portuguese caller: Sim, Tá bom, OK",
        default="en-US",
        allowed=("en-US", "es-US", "pt-BR"),
        turns=(
            # 3 words: the first Portuguese turn that counts
            ("Alô, bom dia.", "en-US"),
            ("Eu queria saber se vocês fazem instalação de ar-condicionado.", "pt-BR"),
            ("Sim", "pt-BR"),
            ("É um apartamento, no terceiro andar.", "pt-BR"),
            ("Tá bom", "pt-BR"),
            ("Quanto fica mais ou menos?", "pt-BR"),
            ("Nossa, tá caro.", "pt-BR"),
            ("OK", "pt-BR"),
            ("E vocês parcelam no cartão?", "pt-BR"),
            ("Em três vezes sem juros?", "pt-BR"),
            ("Tá bom, então pode marcar.", "pt-BR"),
            ("Sábado de manhã dá?", "pt-BR"),
            ("Sim, sim.", "pt-BR"),
            ("O endereço é 1420 Ocean Drive, apartamento 305.", "pt-BR"),
            ("Meu nome é Cláudia Ribeiro.", "pt-BR"),
            ("Ribeiro, R I B E I R O.", "pt-BR"),
            ("Beleza.", "pt-BR"),
            ("Vocês mandam a confirmação pelo WhatsApp?", "pt-BR"),
            ("Perfeito, muito obrigada.", "pt-BR"),
            ("Tchau, tchau.", "pt-BR"),
        ),
    ),
    Call(
        name="German caller at a hotel, English line",
        default="en-GB",
        allowed=("en-GB", "de-DE", "fr-FR"),
        turns=(
            ("Hello, good morning.", "en-GB"),
            # an explicit request ("können wir Deutsch sprechen"): at once
            ("Können wir vielleicht Deutsch sprechen?", "de-DE"),
            ("Wunderbar. Ich habe bei Ihnen ein Zimmer für nächste Woche gebucht.", "de-DE"),
            ("Auf den Namen Hoffmann.", "de-DE"),
            ("Genau, von Montag bis Donnerstag.", "de-DE"),
            ("Ich wollte fragen, ob ich schon am Sonntag anreisen kann.", "de-DE"),
            ("Ja", "de-DE"),
            ("Und was würde die zusätzliche Nacht kosten?", "de-DE"),
            ("Mit Frühstück?", "de-DE"),
            ("Okay, passt.", "de-DE"),
            ("Gibt es bei Ihnen einen Parkplatz oder eine Tiefgarage?", "de-DE"),
            ("Ah, gut. Und wie weit ist es vom Hauptbahnhof?", "de-DE"),
            ("Dann nehme ich wahrscheinlich ein Taxi.", "de-DE"),
            ("Ach so, die U-Bahn hält direkt vor dem Hotel?", "de-DE"),
            ("Perfekt.", "de-DE"),
            ("Könnten Sie mir die Bestätigung per E-Mail schicken?", "de-DE"),
            ("Das ist hoffmann.k@web.de.", "de-DE"),
            ("Genau.", "de-DE"),
            ("Nein, das war's schon. Vielen Dank!", "de-DE"),
            ("Tschüss!", "de-DE"),
        ),
    ),
    Call(
        name="French caller spelling an English name and e-mail",
        default="fr-FR",
        allowed=("fr-FR", "en-GB", "es-ES", "de-DE"),
        turns=(
            ("Bonjour, je vous appelle pour réserver une chambre pour un collègue.", "fr-FR"),
            ("Il arrive de Londres le 14 et il repart le 17.", "fr-FR"),
            ("Une chambre simple, oui.", "fr-FR"),
            ("Il s'appelle John Whitfield.", "fr-FR"),
            # spelled letters: no language, whatever the name's origin
            ("Whitfield, W H I T F I E L D.", "fr-FR"),
            ("Oui, c'est ça.", "fr-FR"),
            ("C'est la société qui paie, Brightwave Consulting.", "fr-FR"),
            ("Brightwave en un seul mot, B R I G H T W A V E.", "fr-FR"),
            ("Vous pouvez envoyer la facture à l'adresse mail de la compta ?", "fr-FR"),
            # an e-mail address: no language
            ("C'est accounts@brightwave.co.uk.", "fr-FR"),
            ("Accounts, avec deux C et un S à la fin.", "fr-FR"),
            ("Parfait.", "fr-FR"),
            ("Est-ce qu'il y a une salle de sport dans l'hôtel ?", "fr-FR"),
            ("Et le petit-déjeuner est compris ?", "fr-FR"),
            ("D'accord, très bien.", "fr-FR"),
            # "en anglais" is the receipt's language, not a request to speak English
            ("Ah, et il aura besoin d'un reçu en anglais, c'est possible ?", "fr-FR"),
            ("Super.", "fr-FR"),
            ("Son portable, c'est le +44 7700 900123.", "fr-FR"),
            ("Non, c'est tout, merci beaucoup.", "fr-FR"),
            ("Bonne journée, au revoir.", "fr-FR"),
        ),
    ),
    Call(
        name="bilingual: a daughter in English, then her father in Spanish, then her again",
        default="en-US",
        allowed=("en-US", "es-US"),
        turns=(
            ("Hi, I'm calling for my dad, he had blood work done last week.", "en-US"),
            ("His name is Ernesto Villalobos.", "en-US"),
            ("Villalobos, V I L L A L O B O S.", "en-US"),
            ("Date of birth is June 2nd, 1956.", "en-US"),
            ("Yeah", "en-US"),
            # to her father: one Spanish turn of 3+ words, not two in a row
            ("Papi, ¿dónde dejaste la tarjeta del seguro?", "en-US"),
            ("Sorry, he's looking for his insurance card.", "en-US"),  # English: the count resets
            ("Here it is, the member ID is W 2 3 7 8 4 1 9 0.", "en-US"),
            ("So are the results back yet?", "en-US"),
            ("Actually, let me put him on, he can answer your questions.", "en-US"),
            # the father: the first Spanish turn of 3+ words
            ("Bueno, sí, buenas tardes.", "en-US"),
            # the second in a row: the call follows him
            ("Soy Ernesto Villalobos, quería saber de mis análisis de sangre.", "es-US"),
            ("Sí, el papá de Karina.", "es-US"),
            ("¿Salió algo mal con el azúcar?", "es-US"),
            ("Ah, OK.", "es-US"),
            ("¿Entonces tengo que venir a ver al doctor?", "es-US"),
            ("El jueves en la mañana me queda bien.", "es-US"),
            ("Sí, a las nueve.", "es-US"),
            ("Gracias, le paso a mi hija otra vez.", "es-US"),
            # the daughter again: the first English turn of 3+ words
            ("Hi, it's me again, sorry about that.", "es-US"),
            # the second in a row: back to English
            ("So we're good for Thursday at nine, right?", "en-US"),
            ("Perfect, thank you so much.", "en-US"),
        ),
    ),
    Call(
        name="Mandarin caller on a Hong Kong line",
        default="zh-HK",
        allowed=("zh-HK", "zh-CN", "en-GB"),
        turns=(
            ("喂，你好。", "zh-HK"),  # no mark of either: nothing to move on
            # the first Mandarin turn of 6+ characters: one in a row
            ("我想问一下，你们医院周末有没有专家门诊？", "zh-HK"),
            # the second in a row: the call moves
            ("我是从深圳过来的，想带我妈妈来看一下。", "zh-CN"),
            ("对，她腰疼了好几个月了。", "zh-CN"),
            ("对，骨科。", "zh-CN"),
            ("星期六上午可以吗？", "zh-CN"),
            ("好的", "zh-CN"),
            ("要先在网上挂号吗？", "zh-CN"),
            ("我没有香港身份证，可以用回乡证吗？", "zh-CN"),
            ("明白了。", "zh-CN"),
            ("那大概要多少钱？", "zh-CN"),
            ("可以刷银联卡吗？", "zh-CN"),
            ("微信支付呢？", "zh-CN"),
            ("行，那就这样。", "zh-CN"),
            ("她叫刘淑芬，文刀刘。", "zh-CN"),
            ("电话是一三八零零一三八八六六。", "zh-CN"),
            ("OK", "zh-CN"),
            ("从罗湖过来怎么走比较方便？", "zh-CN"),
            ("好的，谢谢你啊。", "zh-CN"),
            ("拜拜。", "zh-CN"),
        ),
    ),
    Call(
        name="Hindi caller asking in Hinglish, English line",
        default="en-IN",
        allowed=("en-IN", "hi-IN"),
        turns=(
            ("Hello, is this Sharma Dental Clinic?", "en-IN"),
            # an explicit request, in Hinglish: at once
            ("Hindi mein baat kar sakte hain?", "hi-IN"),
            ("जी, मुझे अपने बेटे के लिए appointment चाहिए।", "hi-IN"),
            ("उसके दाँत में बहुत दर्द है, कल रात से।", "hi-IN"),
            ("वो दस साल का है।", "hi-IN"),
            ("आज शाम को मिल जाएगा?", "hi-IN"),
            ("ठीक है", "hi-IN"),
            ("छह बजे ठीक रहेगा।", "hi-IN"),
            ("नाम आरव मल्होत्रा।", "hi-IN"),
            ("OK", "hi-IN"),
            ("मेरा नंबर है 98765 43210।", "hi-IN"),
            ("जी हाँ", "hi-IN"),
            ("फ़ीस कितनी होगी?", "hi-IN"),
            # one English turn of 3+ words: not two in a row
            ("Sorry, one second please.", "hi-IN"),
            ("हाँ, बोलिए, कार्ड से पेमेंट हो जाएगा ना?", "hi-IN"),  # Hindi: the count resets
            ("UPI भी चलेगा?", "hi-IN"),
            ("बहुत बढ़िया।", "hi-IN"),
            ("क्लिनिक में पार्किंग है?", "hi-IN"),
            ("ठीक है जी, धन्यवाद।", "hi-IN"),
            ("Thank you", "hi-IN"),
        ),
    ),
    Call(
        name="Vietnamese caller at a nail salon, English line",
        default="en-US",
        allowed=("en-US", "es-US", "vi-VN"),
        turns=(
            ("Alô?", "en-US"),  # short
            # the first Vietnamese turn of 3+ words: one in a row
            ("Alô, chị ơi, tiệm mình hôm nay có mở cửa không?", "en-US"),
            ("Em muốn làm bộ móng tay với chân luôn.", "vi-VN"),  # the second: the call moves
            ("Dạ", "vi-VN"),
            ("Khoảng ba giờ chiều được không chị?", "vi-VN"),
            ("Dạ được.", "vi-VN"),
            ("Em đi hai người, em với em gái em.", "vi-VN"),
            ("Ok chị", "vi-VN"),
            ("Làm gel hết bao nhiêu vậy chị?", "vi-VN"),
            ("Còn đắp bột thì sao?", "vi-VN"),
            ("Dạ, vậy em làm gel thôi.", "vi-VN"),
            ("Tên em là Vy, V Y.", "vi-VN"),
            ("Số điện thoại là 714 555 0182.", "vi-VN"),
            ("Vâng", "vi-VN"),
            ("Tiệm có chỗ đậu xe không chị?", "vi-VN"),
            ("À, đậu phía sau hả?", "vi-VN"),
            ("Dạ, em biết rồi.", "vi-VN"),
            ("Nếu em tới trễ chút xíu thì có sao không?", "vi-VN"),
            ("Dạ, cảm ơn chị nhiều nha.", "vi-VN"),
            ("Bye chị.", "vi-VN"),
        ),
    ),
    Call(
        name="Japanese caller at a hotel, English line",
        default="en-US",
        allowed=("en-US", "ja-JP", "ko-KR"),
        turns=(
            # the first Japanese turn of 3+ words: one in a row
            ("もしもし、すみません、予約の確認をしたいんですが。", "en-US"),
            # an explicit request ("is Japanese all right?"), and the second Japanese turn
            ("日本語で大丈夫ですか？", "ja-JP"),
            ("ありがとうございます。来週の月曜日から三泊で予約している田中です。", "ja-JP"),
            ("田中裕子です。", "ja-JP"),
            ("はい", "ja-JP"),
            ("オーシャンビューの部屋でお願いしていたと思うんですが。", "ja-JP"),
            ("そうです", "ja-JP"),
            ("チェックインは何時からできますか？", "ja-JP"),
            ("朝の便で着くので、早めに入れたら助かります。", "ja-JP"),
            ("荷物だけ預けることはできますか？", "ja-JP"),
            ("OK", "ja-JP"),
            ("空港からの送迎はありますか？", "ja-JP"),
            ("いくらですか？", "ja-JP"),
            ("じゃあ、お願いします。", "ja-JP"),
            ("便名はNH184です。", "ja-JP"),
            ("ええ", "ja-JP"),
            ("あと、子供用のベッドも追加できますか？", "ja-JP"),
            ("五歳です。", "ja-JP"),
            ("わかりました。ありがとうございました。", "ja-JP"),
            ("失礼します。", "ja-JP"),
        ),
    ),
    Call(
        name="Korean caller ordering takeout, English line",
        default="en-US",
        allowed=("en-US", "ko-KR", "es-US"),
        turns=(
            ("Hello?", "en-US"),
            # the first Korean turn of 3+ words: one in a row
            ("여보세요, 거기 서울갈비 맞죠?", "en-US"),
            ("포장 주문 하나 하려고요.", "ko-KR"),  # the second: the call moves
            ("네", "ko-KR"),
            ("LA갈비 2인분이랑 물냉면 하나요.", "ko-KR"),
            ("아, 그리고 공깃밥 두 개 추가해 주세요.", "ko-KR"),
            ("맵지 않게 해 주실 수 있어요?", "ko-KR"),
            ("네네", "ko-KR"),
            ("얼마예요?", "ko-KR"),
            ("카드로 할게요.", "ko-KR"),
            ("픽업은 몇 시쯤 가능해요?", "ko-KR"),
            ("OK", "ko-KR"),
            ("이름은 김지연이요.", "ko-KR"),
            ("전화번호는 213 555 0147이에요.", "ko-KR"),
            ("주차는 가게 뒤에 하면 되죠?", "ko-KR"),
            ("Sorry, 다시 한 번만 말씀해 주세요.", "ko-KR"),
            ("아, 알겠습니다.", "ko-KR"),
            ("혹시 반찬도 같이 넣어 주시나요?", "ko-KR"),
            ("감사합니다, 수고하세요.", "ko-KR"),
            ("Bye", "ko-KR"),
        ),
    ),
    Call(
        name="asks for Cantonese at a restaurant, English line",
        default="en-US",
        allowed=("en-US", "es-US", "zh-HK", "zh-CN"),
        turns=(
            ("Hello, hello?", "en-US"),
            ("你好，講廣東話得唔得呀？", "zh-HK"),  # an explicit request: at once
            ("好，我想叫外賣呀。", "zh-HK"),
            ("一個乾炒牛河，一個揚州炒飯。", "zh-HK"),
            ("再加一碟菜心，蒜蓉炒。", "zh-HK"),
            ("係", "zh-HK"),
            ("Pickup 呀，唔使送。", "zh-HK"),
            ("大概幾耐有得拎呀？", "zh-HK"),
            ("二十分鐘？OK。", "zh-HK"),
            ("幾多錢呀？", "zh-HK"),
            ("收唔收 credit card？", "zh-HK"),
            ("好，我個名叫 Kenny，電話四一五 五五五 零一三二。", "zh-HK"),
            ("Kenny，K E N N Y。", "zh-HK"),  # a name and spelled letters: no language
            ("冇錯", "zh-HK"),
            ("有冇地方泊車㗎？", "zh-HK"),
            ("哦，後面條巷有咪錶。", "zh-HK"),
            ("唔該，要多幾包豉油同辣椒油。", "zh-HK"),
            ("Thank you", "zh-HK"),
            ("得喇，等陣見。", "zh-HK"),
            ("拜拜。", "zh-HK"),
        ),
    ),
    Call(
        name="Italian caller, a line that does not speak Italian",
        default="en-US",
        allowed=("en-US", "es-US"),
        turns=(
            # an explicit request for Italian, which the line does not speak: it stays
            ("Buonasera, parlate italiano?", "en-US"),
            # Italian, not allowed: stays (and is not Spanish)
            ("Vorremmo prenotare un tavolo per stasera, siamo in quattro.", "en-US"),
            ("Alle otto, se è possibile.", "en-US"),  # Italian again: still not allowed
            ("Ah, okay, sorry.", "en-US"),
            ("Table for four, eight o'clock.", "en-US"),
            ("Sì", "en-US"),
            ("Name is Rossi, R O S S I.", "en-US"),
            ("Perfetto, grazie.", "en-US"),
            ("Is it possible outside, the table?", "en-US"),
            ("Scusi, un attimo, chiedo a mia moglie.", "en-US"),  # Italian: not allowed
            ("Sì, sì, va bene dentro.", "en-US"),  # Italian: not allowed
            ("Inside is fine, thank you.", "en-US"),
            ("Thank you very much.", "en-US"),
            ("Arrivederci!", "en-US"),
        ),
    ),
)
"""Scripted calls, the call's locale after each turn: see the module docstring."""
