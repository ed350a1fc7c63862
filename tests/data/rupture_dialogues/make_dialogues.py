"""Test dialogues with known ruptures and repairs, for appliance/notes/ruptures.py.

Written by hand (the lines below), not recorded: each becomes ``<name>.json`` in the
transcript's JSON shape (``segments`` with start, end, speaker, text) plus ``labels``:
the start of every line that is a moment to review, its kind, and the start of the
clinician line that repairs it (null: no repair). Timing: 2.6 words a second, 0.7 s
between lines, and the pauses written as ``("pause", seconds)``.

A line marked ``C>``, ``W>`` or ``S>`` is a labelled moment (confrontation, withdrawal,
silence after interpretation); ``R>`` marks the repair of the moment before it.
``exact`` is false where the rules are known to miss or misplace something (the
test then checks only the overall precision and recall). Three groups: the first
dialogues, written alongside the rules; round 2, written as held out and then used
to fix the rules; and the held-out ones (``held_out`` true in their labels), written
after the last fix and never tuned on. Regenerate with
``python3 tests/data/rupture_dialogues/make_dialogues.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = {"C>": "confrontation", "W>": "withdrawal", "S>": "silence after interpretation"}
T, C = "Clinician", "Client"

DIALOGUES: dict[str, dict] = {
    "repair_apology": {"exact": True, "lines": [
        (T, "How have things been at home since we last met?"),
        (C, "Not great. My partner and I argued about money again and I ended up sleeping on the sofa."),
        (T, "Have you thought about simply setting a budget together this week?"),
        (C, "C>You're not listening. I told you last time that the budget isn't the problem at all."),
        (T, "R>You're right, I got ahead of you. What did I miss about what the argument was really like?"),
        (C, "It's that he decides everything and I feel like a child asking for pocket money."),
        (T, "That sounds humiliating. When did you first notice feeling that way with him?"),
        (C, "Probably when I stopped working after our daughter was born, about four years ago now."),
    ]},
    "no_repair": {"exact": True, "lines": [
        (T, "Last week you said the new job was going well. Tell me more about it."),
        (C, "It's been busy. There's a lot of training, and my manager checks everything I write."),
        (T, "So you feel your manager doesn't trust you and that makes you anxious all day."),
        (C, "C>That's not what I said. I said she checks things, which is normal for new staff."),
        (T, "Let's look at your sleep diary. How many hours did you get on weeknights?"),
        (C, "About six, maybe six and a half. It's better than it was in the spring when I barely slept."),
        (T, "And what time do you usually go to bed on a weeknight now?"),
        (C, "Around eleven, after the news. I read for a bit and then turn off the light."),
    ]},
    "withdrawal_drop": {"exact": True, "lines": [
        (T, "You mentioned your brother called on Sunday. How was that?"),
        (C, "He called to ask for money again, and I said yes again, even though I promised myself I wouldn't this time."),
        (T, "What went through your mind when you said yes to him?"),
        (C, "That if I said no he would stop calling, and then I would be the one who broke the family apart."),
        (T, "It sounds as though you carry the whole family on your shoulders, the way your mother did."),
        (C, "W>Maybe."),
        (T, "Your mother also kept everyone together, from what you've told me before."),
        (C, "I don't know."),
        (T, "R>I notice you went quiet after I brought up your mother. Thank you for staying with it. Tell me what didn't fit."),
        (C, "It's just that I'm not like her. She gave in to everyone, and I'm trying so hard not to do that."),
        (T, "That is an important difference. What does trying not to give in look like for you?"),
        (C, "Saying no at work sometimes, and not answering my phone after nine in the evening."),
    ]},
    "withdrawal_no_repair": {"exact": True, "lines": [
        (T, "What would you like to focus on today?"),
        (C, "The drinking, I guess. My wife says it's got worse, and honestly I think she might be right about it."),
        (T, "How much are you drinking on a typical evening these days?"),
        (C, "Four or five beers, more on Fridays. It started after I lost the contract with the council last year."),
        (T, "Perhaps you drink so you don't have to feel how much losing that contract shamed you."),
        (C, "W>Could be."),
        (T, "Shame is often what keeps drinking going, and it's worth looking at carefully together."),
        (C, "Sure."),
        (T, "Let's fill in a drinking diary this week, each evening, with the number and the mood."),
        (C, "Okay, I can do that on my phone. I'll put a reminder in for nine o'clock every evening."),
        (T, "Good. We will look at it together next time and see what patterns show up."),
        (C, "Thanks. See you next week then, same time as usual I think."),
    ]},
    "silence_interpretation": {"exact": True, "lines": [
        (T, "You said you froze again when your father phoned on your birthday."),
        (C, "Yes. He asked about work, and I just listed everything I had achieved this year, like a report."),
        (T, "I wonder if part of you is still waiting for him to say he is proud of you."),
        ("pause", 9.0),
        (C, "S>I've never thought about it like that. Maybe. I was about to say no, but I'm not sure."),
        (T, "Take your time. What comes up when you think about him saying it?"),
        (C, "Relief, I think. And anger that it still matters so much to me at forty-two."),
        (T, "Both can be true at once. Shall we stay with the anger for a moment?"),
        (C, "Yes, I think I'd like that. It doesn't come out very often."),
    ]},
    "withdrawal_phrase": {"exact": True, "lines": [
        (T, "You mentioned your stepfather last time. Can you tell me about growing up with him?"),
        (C, "W>I don't want to talk about him. Can we talk about something else, like my exams?"),
        (T, "R>That's okay. Thank you for telling me it's hard. We can go at your pace. What's happening with the exams?"),
        (C, "I have three in June and I can't revise for more than ten minutes without my mind wandering off."),
        (T, "What happens in those ten minutes before your mind wanders?"),
        (C, "I start fine, then I think about how much is left and I feel sick and check my phone."),
    ]},
    "sympathy_is_not_repair": {"exact": True, "lines": [
        (T, "How did the week go with the exposure practice?"),
        (C, "I did it twice. The lift was hard but I stayed in it for three floors each time."),
        (T, "It seems like you only do the exercises to please me rather than for yourself."),
        (C, "C>Why do you keep saying that? I'm doing it for me, not for you."),
        (T, "Sorry to hear it feels like that. Anyway, let's plan next week's practice now."),
        (C, "Fine. I could try the lift at the hospital, it goes up eight floors."),
        (T, "Eight floors is a good next step. Which day could you do it?"),
        (C, "Wednesday, after my shift. My friend works there, she could meet me after."),
    ]},
    "two_episodes": {"exact": True, "lines": [
        (T, "Where would you like to start today?"),
        (C, "With the panic on the train. It happened again on Tuesday between two stations."),
        (T, "Maybe part of you wants an excuse to stop commuting to that office altogether."),
        (C, "C>Honestly, that annoyed me. I was annoyed when you said that, because I love my job."),
        (T, "R>I'm sorry, I jumped to that too quickly. Tell me more about what happened on the train."),
        (C, "The train stopped in the tunnel and the lights flickered and my chest went tight straight away."),
        (T, "And what did you do when your chest went tight in the tunnel?"),
        (C, "I counted my breaths like we practised, and it passed after maybe two minutes, which surprised me."),
        (T, "That's a real success. Let's talk about your mother's visit next week."),
        (C, "She arrives on Friday. It's only for three days, so I think I will cope with it fine."),
        (T, "Family stress often feeds panic, so maybe part of the panic is really about her visit."),
        (C, "C>You're not listening to me. It has nothing to do with her, it's the trains."),
        (T, "We'll come back to it. Let's set the breathing practice for the week."),
        (C, "Okay. Twice a day, morning and evening, like before I suppose."),
    ]},
    # Hard negatives: nothing here is a moment to review.
    "annoyed_at_the_boss": {"exact": True, "lines": [
        (T, "How was work this week?"),
        (C, "Awful. I was so annoyed at my boss when he moved the deadline again without asking anyone."),
        (T, "That sounds frustrating. What did you do with the annoyance?"),
        (C, "You know, I was annoyed with him all day, but I didn't say a word, I just kept working."),
        (T, "Were you annoyed with yourself for not saying anything?"),
        (C, "A bit. My wife always says you don't understand how much you let people walk over you."),
        (T, "What would it be like to tell your boss how the moved deadline affected you?"),
        (C, "Terrifying, but probably good for me. I could ask for the next change in writing."),
    ]},
    "i_dont_understand_the_form": {"exact": True, "lines": [
        (T, "Before we start, did you manage to fill in the questionnaire I sent?"),
        (C, "I tried, but I don't understand the form. What does it mean by functional impairment?"),
        (T, "Sorry, it's badly worded. It means how much the anxiety gets in the way of your daily life."),
        (C, "Oh, I see. Then quite a lot, mostly at work, and when I have to go shopping on my own."),
        (T, "Thank you. What gets in the way most when you go shopping on your own?"),
        (C, "The queues. I don't understand why, but standing in a queue makes my heart race."),
        (T, "Let's look at the queues together, step by step, and see what your body does."),
        (C, "Alright. It usually starts when there are more than three people in front of me."),
    ]},
    "clinician_asks_were_you_annoyed": {"exact": True, "lines": [
        (T, "Last week I pushed you quite hard about the diary. Were you annoyed with me about that?"),
        (C, "No, I wasn't annoyed. I was tired, and I think you were right to push a bit."),
        (T, "I'm glad you can tell me either way. Did you feel upset when you left?"),
        (C, "I'm not upset with you at all. I was upset about my sister, she cancelled our weekend again."),
        (T, "What happened with your sister and the weekend plans?"),
        (C, "She said work came up, but she always says that, and I'd been looking forward to it for weeks."),
    ]},
    "polite_disagreement": {"exact": True, "lines": [
        (T, "It seems to me the arguments with your son are about feeling disrespected at home."),
        ("pause", 2.0),
        (C, "I'm not sure that's quite right. I think it's more about the money he keeps asking for, honestly."),
        (T, "Okay, so the money is the bigger part. Tell me about the last time he asked."),
        (C, "It's not that you don't understand, it's that I find it hard to explain without sounding mean about him."),
        (T, "Take your time. You don't have to get the words right here."),
        (C, "He asked for two hundred pounds for a festival and I said yes, then lay awake half the night."),
        (T, "What kept you awake that night, do you think?"),
        (C, "Worrying that I'm teaching him that asking always works, the way my dad taught me."),
    ]},
    "closed_questions_intake": {"exact": True, "lines": [
        (T, "Is this your first time seeing a therapist?"),
        (C, "Yes."),
        (T, "Are you taking any medication at the moment?"),
        (C, "No, nothing."),
        (T, "Do you drink alcohol or use any other substances?"),
        (C, "A glass of wine at weekends."),
        (T, "Have you ever had thoughts of harming yourself?"),
        (C, "No, never."),
        (T, "Thank you. Next time we will talk about what brought you here in more detail."),
        (C, "Okay, thanks."),
    ]},
    # Subtle: sarcasm and a change of subject the phrase lists do not know.
    "missed_sarcasm": {"exact": False, "lines": [
        (T, "How did the conversation with your landlord go in the end?"),
        (C, "He agreed to fix the heating by Friday, but only after I sent three emails and called twice."),
        (T, "It seems like you find it hard to ask for what you need without apologising first."),
        (C, "C>Sure. Whatever. Anyway, the weather's been nice, I went for a long walk on Sunday by the river."),
        (T, "That sounds lovely. Where do you like to walk usually?"),
        (C, "Along the canal, mostly, down to the lock and back, about an hour and a half in total."),
    ]},
}


# Round 2: written as held-out dialogues after the first rules were fixed. Measured
# so: moments precision 0.40, recall 0.50; repairs 1.00 and 0.33. The rules were then
# fixed on them (reported "saying", "I told her", "you always say that", "I feel
# judged", "fair enough"), so they count as written with the rules now.
ROUND2: dict[str, dict] = {
    "round2_always_say_that": {"exact": True, "lines": [
        (T, "How did the thought record go this week?"),
        (C, "I didn't do it. I was working late every night and it felt like one more chore on the list."),
        (T, "Could you try doing just one thought record, even a short one, before we meet next?"),
        (C, "C>You always say that. Every week it's the same suggestion, and it never works for me."),
        (T, "R>Fair enough. I've been repeating myself. What would actually be useful to you right now?"),
        (C, "Honestly, just talking things through. Writing it down makes me feel like I'm at school."),
    ]},
    "round2_feel_judged": {"exact": True, "lines": [
        (T, "You mentioned you had a drink on Saturday after three weeks without one."),
        (C, "Two, actually. It was my brother's fortieth and everyone was drinking and I just gave in."),
        (T, "So after three weeks you decided to drink again at the party."),
        (C, "C>I feel like you're judging me right now, and that's the last thing I need."),
        (T, "R>Thank you for saying that. I didn't mean to judge, and I can see how it came across."),
        (C, "Okay. It's just that I already feel bad enough about it without hearing it from you."),
    ]},
    "round2_withdraw_fine": {"exact": True, "lines": [
        (T, "How are things since you moved out of the flat you shared with Sam?"),
        (C, "Mixed. The new place is quiet, which I like, but I keep replaying the last year with him in my head."),
        (T, "What do you find yourself replaying most often?"),
        (C, "The times I stayed quiet when he shouted, and all the evenings I spent apologising for things I hadn't done."),
        (T, "Perhaps the anger at Sam is also anger at yourself for staying so long with him."),
        (C, "W>Fine."),
        (T, "It makes sense that you'd be angry about the time you lost there."),
        (C, "Whatever you think."),
        (T, "Let's talk about the new flat. What have you done to make it feel like yours?"),
        (C, "I painted the bedroom green and put up the photos from my trip to Portugal, which helped a lot."),
        (T, "That sounds like a real start on making it home."),
        (C, "It is. I even had a friend round for dinner last Friday, first time in a year."),
    ]},
    "round2_silence_then_pushback": {"exact": True, "lines": [
        (T, "You said you've been thinking about leaving nursing after twelve years."),
        (C, "Yes. The night shifts are wearing me down and I don't recognise myself at the end of a week."),
        (T, "I wonder whether you chose nursing to keep looking after your mother, in a way."),
        ("pause", 7.0),
        (C, "C>No. That's not it at all. I chose it because I loved biology at school."),
        (T, "R>Okay, I got that wrong. Tell me about loving biology at school."),
        (C, "I liked knowing how the body works. Nursing was the way to use that every day."),
    ]},
    "round2_annoyed_at_partner": {"exact": True, "lines": [
        (T, "How have the evenings been with your partner this week?"),
        (C, "Tense. I get so frustrated when he says I'm not listening, because I am, I just disagree with him."),
        (T, "What happens next, when he says that to you?"),
        (C, "He keeps saying you don't get it, you don't get it, and then he goes off to his room."),
        (T, "And how do you feel once he has gone to his room?"),
        (C, "Lonely, and then guilty for feeling lonely in my own house with someone right there."),
    ]},
    "round2_agreeing_you_are_right": {"exact": True, "lines": [
        (T, "Last week you noticed your shoulders were tight before the panic came. Did you notice it again?"),
        (C, "You're right, I wasn't listening to my body at all before. This week I caught it twice."),
        (T, "Catching it twice is good. What did you do when you caught it?"),
        (C, "I dropped my shoulders and did the slow breathing, and the panic didn't build up the same way."),
    ]},
    # A productive silence: the rules list it (a long silence after "I wonder if"), wrongly.
    "round2_productive_silence": {"exact": False, "lines": [
        (T, "Your sister said on the phone that you've always been the strong one."),
        (C, "She did. And I laughed, but afterwards I sat in the car for twenty minutes before I could drive."),
        (T, "I wonder if that was hard to hear, being called the strong one when you feel so tired."),
        ("pause", 6.0),
        (C, "It was. But it was also true, and I needed someone to notice how much it costs me."),
        (T, "What does it cost you, being the strong one?"),
        (C, "Sleep, mostly. And the feeling that nobody would look after me if I fell apart."),
    ]},
    "round2_story_with_quote": {"exact": True, "lines": [
        (T, "Tell me about the meeting with your manager on Thursday."),
        (C, "She said I had promised the report by Monday. Then I told her, that's not what I said, and walked out."),
        (T, "What happened in your body just before you walked out?"),
        (C, "My face went hot and my hands were shaking, and I knew if I stayed I would cry in front of her."),
    ]},
}


# Held out: written after the second round of fixes, and not tuned on; whatever the
# rules make of them is what the bench reports as held out.
HELD_OUT: dict[str, dict] = {
    "heldout_not_understood": {"exact": False, "lines": [
        (T, "You said the move to the new team has been hard. What has been hardest?"),
        (C, "The silence. Nobody talks to me in the kitchen and I eat lunch at my desk most days now."),
        (T, "It sounds like you may be withdrawing from them before they can reject you."),
        (C, "C>With respect, I don't think you've understood my situation at all. They ignore me."),
        (T, "R>I think you're right, I haven't understood it yet. Help me get it right: what happens in the kitchen?"),
        (C, "I say good morning and they carry on talking as if I wasn't there, every single day."),
    ]},
    "heldout_pointless": {"exact": False, "lines": [
        (T, "Shall we look at the anxiety ratings from this week?"),
        (C, "Seven, eight, seven, the same as last week and the week before that, nothing has moved."),
        (T, "Let's keep rating them and see if a pattern shows up over the month."),
        (C, "C>This is pointless. We go round in circles every week and nothing changes for me."),
        (T, "Let's review your goals from the first session and see where we are with each one."),
        (C, "The first was sleeping through, and I still wake at four most nights, so not far."),
    ]},
    "heldout_mm_yeah_dunno": {"exact": False, "lines": [
        (T, "How did the visit to your father in the care home go on Sunday?"),
        (C, "He didn't know who I was for most of it. He called me by my uncle's name and asked when I was going back to the farm."),
        (T, "That must have been painful. What did you do when he called you by your uncle's name?"),
        (C, "I went along with it. I talked about the farm as if I was my uncle and he seemed happier, so I kept going for an hour."),
        (T, "Maybe going along with it is something you've always done with him, keeping him happy at your own cost."),
        (C, "W>Mm."),
        (T, "Even as a child you've described keeping the peace whenever he was in a mood."),
        (C, "Yeah."),
        (T, "R>I may have pushed too hard there. I'm sorry. What was it like to sit with him on Sunday?"),
        (C, "Sad, mostly. And strangely peaceful at the end, when he held my hand without knowing who I was."),
        (T, "Both of those can sit side by side. What stays with you most from the visit?"),
        (C, "His hand. It felt smaller than I remember, and I kept thinking about that on the drive home."),
    ]},
    "heldout_prefer_not": {"exact": False, "lines": [
        (T, "Last time you mentioned the accident in passing. Could we talk about it today?"),
        (C, "W>I'd prefer not to get into that today. I've had a long week and I'm not up to it."),
        (T, "We've got a lot on the list anyway. How was the week at work?"),
        (C, "Long. Two people were off sick and I covered both of their shifts on top of mine."),
    ]},
    "heldout_furious_with_the_gp": {"exact": False, "lines": [
        (T, "How was the appointment with the GP about your back?"),
        (C, "I was furious with the GP. He didn't understand a word I said and just printed out a leaflet."),
        (T, "What would you have wanted from him instead?"),
        (C, "Five minutes of actually listening, and maybe a referral to the physio like last time."),
    ]},
    "heldout_did_i_upset_you": {"exact": False, "lines": [
        (T, "Did I upset you last week when I mentioned your father?"),
        (C, "No, you didn't upset me. It made me think, and I talked to my brother about him on Tuesday."),
        (T, "What came out of talking to your brother?"),
        (C, "That we both remember him very differently, and that's alright, we don't need to agree."),
    ]},
    "heldout_daughter_joke": {"exact": False, "lines": [
        (T, "How is home life with the new baby?"),
        (C, "Chaotic. You're not listening to me, my daughter always says, and she's right, I'm half asleep all day."),
        (T, "How much sleep are you getting on an average night?"),
        (C, "Maybe four hours in pieces. My husband does the early feed so I get a stretch till six."),
    ]},
    "heldout_polite_not_sure": {"exact": False, "lines": [
        (T, "Maybe you're bored at work because the anxiety keeps you from trying anything new there."),
        ("pause", 3.0),
        (C, "Hmm, I'm not sure I agree. I think it's more that the job is genuinely dull, to be honest."),
        (T, "Okay, the job itself. What would a less dull job look like for you?"),
        (C, "Something with people, not spreadsheets. I used to love the customer side of things."),
        (C, "Sorry, I'm rambling. You asked about the anxiety."),
        (T, "No need to be sorry, this matters too. Tell me about the customer side."),
        (C, "I ran the returns desk for two years and I was good at calming angry people down."),
    ]},
}


def build(lines: list[tuple]) -> tuple[list[dict], list[dict]]:
    """The segments and the labelled moments of one dialogue."""
    segments, moments, clock = [], [], 0.6
    for who, what in lines:
        if who == "pause":
            clock += what
            continue
        mark, text = (what[:2], what[2:]) if what[:2] in (*KINDS, "R>") else ("", what)
        end = round(clock + max(1.0, len(text.split()) / 2.6), 2)
        segments.append({"start": round(clock, 2), "end": end, "speaker": who, "text": text})
        if mark in KINDS:
            moments.append({"start": round(clock, 2), "kind": KINDS[mark], "repair_start": None})
        elif mark == "R>":
            moments[-1]["repair_start"] = round(clock, 2)
        clock = end + 0.7
    return segments, moments


def main() -> None:
    """Write every dialogue's JSON next to this script."""
    for held_out, dialogues in ((False, DIALOGUES), (False, ROUND2), (True, HELD_OUT)):
        for name, dialogue in dialogues.items():
            segments, moments = build(dialogue["lines"])
            data = {"duration_s": round(segments[-1]["end"] + 1.0, 2), "segments": segments,
                    "labels": {"exact": dialogue["exact"], "held_out": held_out,
                               "moments": moments}}
            (HERE / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
