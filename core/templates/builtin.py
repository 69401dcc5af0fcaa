"""The six built-in templates: version 1 of each, as migration 0013 seeds it.

Never edit these texts: a conversation generated from a built-in records version 1, and version
1 must keep meaning what it meant. A built-in is changed like any template, by saving a new
version (the Templates page, or `python -m core templates import`).
"""

from __future__ import annotations

import uuid

from core.templates.model import Template, TemplateContent

__all__ = ["BUILTINS", "builtin_version_id", "builtin_template_id"]

# fixed ids, so the seeded rows are the same in every database
_NAMESPACE = uuid.UUID("5b0e4a8c-8f0e-4a53-9d3e-3c1f2b6a7d10")


def builtin_template_id(slug: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"template:{slug}"))


def builtin_version_id(slug: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"template:{slug}:1"))


# name, title, description, system prompt, user template, personas, emotions, topics
_Row = tuple[str, str, str, str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]

_ROWS: tuple[_Row, ...] = (
    (
        "customer_support",
        "Customer support",
        "A customer contacts an online retailer's support desk; the agent resolves the issue.",
        (
            "You are a customer support agent for Northwind Goods, an online retailer of home and "
            "outdoor products. You are courteous, concise and accurate. You acknowledge the customer's "
            "feelings, ask for the details you need (order number, email on the account) before acting, "
            "explain the policy in plain words (30-day returns, free return shipping on defective items, "
            "refunds within 5 business days) and end each reply with a clear next step. You never "
            "invent order data and never promise what policy does not allow."
        ),
        (
            "Write a realistic customer support chat between a customer and a Northwind Goods support "
            "agent. The customer is {persona}, feels {emotion}, and is contacting support about {topic}. "
            "The conversation has {turns} messages in total. Let the customer's mood show in their "
            "wording and change naturally as the agent helps; the agent stays calm and solves or "
            "escalates the problem by the last message."
        ),
        (
            "a small-business owner who orders supplies every month",
            "a retired teacher who rarely shops online",
            "a college student on a tight budget",
            "a busy parent of three ordering from a phone",
            "a contractor buying in bulk for a job site",
        ),
        ("frustrated", "anxious", "confused", "calm", "angry", "hopeful"),
        (
            "a package marked delivered that never arrived",
            "a double charge on their credit card",
            "returning a patio chair that arrived damaged",
            "changing the delivery address after ordering",
            "a discount code that was rejected at checkout",
        ),
    ),
    (
        "tutoring",
        "Tutoring",
        "A learner works through a concept with a patient tutor who teaches by asking questions.",
        (
            "You are a patient, encouraging tutor. You teach by asking guiding questions rather than "
            "giving answers away, check understanding with a short example, correct mistakes kindly and "
            "precisely, and adapt the level of explanation to the learner. Keep each reply focused on "
            "one idea."
        ),
        (
            "Write a tutoring session between a learner and a tutor. The learner is {persona} and feels "
            "{emotion} about {topic}. The conversation has {turns} messages in total. The learner makes "
            "at least one realistic mistake that the tutor helps them find themselves, and by the end "
            "the learner can explain the idea in their own words."
        ),
        (
            "a high-school student preparing for a final exam",
            "an adult returning to study after ten years",
            "a first-year nursing student",
            "a self-taught programmer switching careers",
            "a middle-school student who loves science",
        ),
        ("confused", "curious", "discouraged", "overconfident", "nervous", "motivated"),
        (
            "solving linear equations with fractions",
            "how photosynthesis stores energy",
            "recursion in Python",
            "reading a supply and demand graph",
            "the causes of the First World War",
        ),
    ),
    (
        "personal_finance",
        "Personal finance",
        "Someone asks a financial coach for help with a money decision; general education, not advice.",
        (
            "You are a friendly personal finance coach. You give general education, not individual "
            "investment, tax or legal advice, and say so when a question needs a licensed professional. "
            "You ask about income, expenses, debts and goals before suggesting anything, explain "
            "trade-offs with simple numbers, and favour small concrete steps the person can take this week."
        ),
        (
            "Write a conversation between a person and a personal finance coach. The person is "
            "{persona}, feels {emotion}, and wants help with {topic}. The conversation has {turns} "
            "messages in total. Use plausible numbers; the coach asks clarifying questions first and "
            "ends with a short, realistic plan."
        ),
        (
            "a 24-year-old in their first full-time job",
            "a freelance designer with irregular income",
            "a couple in their thirties saving for a first home",
            "a 58-year-old planning for retirement",
            "a single parent rebuilding after a divorce",
        ),
        ("overwhelmed", "anxious", "determined", "embarrassed", "optimistic", "skeptical"),
        (
            "paying off credit card debt",
            "building an emergency fund",
            "making a monthly budget that sticks",
            "deciding between renting and buying",
            "starting to invest for retirement",
        ),
    ),
    (
        "tech_troubleshooting",
        "Technical troubleshooting",
        "A user gets step-by-step help from an IT support specialist to fix a technical problem.",
        (
            "You are an experienced IT support specialist. You diagnose methodically: you ask what the "
            "user sees and what changed recently, suggest one step at a time starting with the least "
            "disruptive, explain in plain language what each step does, and confirm the result before "
            "moving on. You warn before anything that could lose data."
        ),
        (
            "Write a troubleshooting conversation between a user and an IT support specialist. The user "
            "is {persona}, feels {emotion}, and needs help with {topic}. The conversation has {turns} "
            "messages in total. The first idea does not fix it; the specialist narrows the cause down "
            "step by step and the problem is solved or clearly escalated by the end."
        ),
        (
            "an accountant working from home",
            "a grandparent setting up a new tablet",
            "a graphic designer on a deadline",
            "a small-office manager without an IT department",
            "a university student before an online exam",
        ),
        ("stressed", "impatient", "confused", "calm", "embarrassed", "annoyed"),
        (
            "Wi-Fi that drops every few minutes",
            "a laptop that became very slow after an update",
            "email that stopped syncing on a phone",
            "a printer that shows offline",
            "a video call where others cannot hear them",
        ),
    ),
    (
        "healthcare_intake",
        "Clinic appointment intake",
        "A patient talks to a clinic's scheduling assistant; no diagnosis, safe triage to the right visit.",
        (
            "You are the scheduling and intake assistant of a community health clinic. You do not "
            "diagnose or give medical advice. You collect the reason for the visit, how long it has "
            "lasted and how urgent it feels, tell the patient to call emergency services for warning "
            "signs such as chest pain or trouble breathing, and book the right kind of appointment."
        ),
        (
            "Write a conversation between a patient and a clinic's intake assistant. The patient is "
            "{persona}, feels {emotion}, and is calling about {topic}. The conversation has {turns} "
            "messages in total. The assistant stays within its role and ends with a booked appointment "
            "or a clear referral."
        ),
        (
            "a construction worker with little free time",
            "an elderly patient who is hard of hearing",
            "a new parent calling about their baby",
            "an international student new to the country",
        ),
        ("worried", "in a hurry", "calm", "irritated", "scared"),
        (
            "a cough that has lasted three weeks",
            "a prescription refill that is running out",
            "a rash after starting a new medication",
            "booking a routine check-up",
        ),
    ),
    (
        "travel_booking",
        "Travel booking",
        "A traveller works out a booking problem with a travel agency's assistant.",
        (
            "You are a travel agency assistant. You are upbeat and precise with dates, times and "
            "prices, confirm every change before making it, explain fees and fare rules honestly, and "
            "offer two or three concrete options when plans must change."
        ),
        (
            "Write a conversation between a traveller and a travel agency assistant. The traveller is "
            "{persona}, feels {emotion}, and needs help with {topic}. The conversation has {turns} "
            "messages in total. Include specific dates and times, and end with a confirmed plan."
        ),
        (
            "a family of four going on their first trip abroad",
            "a consultant who travels every week",
            "a couple planning their honeymoon",
            "a backpacker on a three-month trip",
        ),
        ("excited", "stressed", "disappointed", "indecisive", "frustrated"),
        (
            "a cancelled connecting flight",
            "changing the dates of a hotel booking",
            "choosing between two itineraries",
            "a lost booking confirmation",
        ),
    ),
)



def _template(row: _Row) -> Template:
    slug, title, description, system_prompt, user_template, personas, emotions, topics = row
    content = TemplateContent(title=title, description=description, system_prompt=system_prompt,
                              user_template=user_template,
                              variables={"persona": personas, "emotion": emotions, "topic": topics})
    return Template(name=slug, content=content, version=1, id=builtin_version_id(slug),
                    template_id=builtin_template_id(slug))


BUILTINS: dict[str, Template] = {row[0]: _template(row) for row in _ROWS}
