"""The chat's conversations list (ui/conversations.py): a real SQLite file in a temp DATA_DIR."""

from __future__ import annotations

from pathlib import Path

from ui.conversations import KEPT_MESSAGES, TITLE_CHARS, ConversationStore

BROWSER = "3f2b9a64-7c1e-4d2a-9b8f-0a1b2c3d4e5f"
OTHER = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"


def chat(*questions: str) -> dict:
    """A conversation as the chat holds it: a question and its answer per exchange, thumbs' ids."""
    history = [
        m
        for q in questions
        for m in ({"role": "user", "content": q}, {"role": "assistant", "content": f"answer to {q}"})
    ]
    turns = [{"question": q, "answer": f"answer to {q}", "exchange_id": f"x-{q}"} for q in questions]
    ids = {str(2 * i + 1): f"x-{q}" for i, q in enumerate(questions)}
    return {"history": history, "turns": turns, "ids": ids}


def test_conversations_are_listed_written_last_first_and_survive_a_restart(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "conversations.sqlite")
    first = store.save(BROWSER, "", chat("How do I start it without a browser tab?"), 0, at=1.0)
    second = store.save(BROWSER, "", chat("Which port does it use?"), 0, at=2.0)
    assert first and second and first.id != second.id
    assert [c.title for c in store.list(BROWSER)] == [
        "Which port does it use?",
        "How do I start it without a browser tab?",
    ]

    # continuing the first moves it to the top; its title stays its first question
    again = store.save(
        BROWSER, first.id, chat("How do I start it without a browser tab?", "and on Docker?"), 1, at=3.0
    )
    assert again and (again.id, again.version) == (first.id, 2)
    store.close()

    reopened = ConversationStore(tmp_path / "conversations.sqlite")
    assert [c.id for c in reopened.list(BROWSER)] == [first.id, second.id]
    kept = reopened.get(BROWSER, first.id)
    assert kept and kept.title == "How do I start it without a browser tab?"
    assert kept.state["ids"] == {"1": "x-How do I start it without a browser tab?", "3": "x-and on Docker?"}
    assert reopened.latest(BROWSER) == kept
    reopened.close()


def test_a_browser_sees_only_its_own_conversations_and_one_without_an_id_keeps_none(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite")
    mine = store.save(BROWSER, "", chat("mine"), 0)
    assert mine and store.list(OTHER) == [] and store.get(OTHER, mine.id) is None
    assert store.delete(OTHER, mine.id) is False and store.get(BROWSER, mine.id)
    # storage switched off in the browser (no id), or an id that is not one: nothing kept, nothing shared
    assert store.save("", "", chat("anyone's"), 0) is None and store.list("") == []
    assert store.save("x", "", chat("short"), 0) is None


def test_a_tab_continuing_a_conversation_another_tab_continued_meanwhile_gets_its_own(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite")
    shared = store.save(BROWSER, "", chat("first"), 0)
    assert shared
    by_one_tab = store.save(BROWSER, shared.id, chat("first", "from tab A"), shared.version)
    by_other = store.save(
        BROWSER, shared.id, chat("first", "from tab B"), shared.version
    )  # saw version 1 too
    assert by_one_tab and by_other and by_other.id != shared.id == by_one_tab.id
    assert store.get(BROWSER, shared.id).state["turns"][-1]["question"] == "from tab A"  # type: ignore[union-attr]
    assert store.get(BROWSER, by_other.id).state["turns"][-1]["question"] == "from tab B"  # type: ignore[union-attr]
    assert by_other.title == "first"

    # deleted in one tab, continued in another: kept again, as a new conversation
    assert store.delete(BROWSER, shared.id)
    revived = store.save(BROWSER, shared.id, chat("first", "from tab A", "more"), by_one_tab.version)
    assert revived and revived.id != shared.id and store.get(BROWSER, revived.id)


def test_an_emptied_conversation_leaves_the_list_and_a_long_one_keeps_its_last_messages(
    tmp_path: Path,
) -> None:
    store = ConversationStore(tmp_path / "c.sqlite")
    one = store.save(BROWSER, "", chat("only question"), 0)
    assert one
    assert (
        store.save(BROWSER, one.id, {"history": [], "turns": [], "ids": {}}, one.version) is None
    )  # ↶ of it
    assert store.list(BROWSER) == []

    many = [f"question {i} " + "word " * 30 for i in range(KEPT_MESSAGES // 2 + 5)]
    long = store.save(BROWSER, "", chat(*many), 0)
    assert long and len(long.state["history"]) == KEPT_MESSAGES
    assert (
        long.title.startswith("question 0 word")
        and len(long.title) == TITLE_CHARS
        and long.title.endswith("…")
    )


def test_the_copy_an_earlier_version_kept_in_the_browser_moves_to_the_list_once(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite")
    kept = {
        "tabs": {
            "tab-a": {"conversation": chat("asked in tab A"), "at": 1.0},
            "tab-b": {"conversation": chat("asked in tab B"), "at": 2.0},
            "tab-c": {"conversation": {"history": [], "turns": [], "ids": {}}, "at": 3.0},  # emptied
        }
    }
    moved = store.import_kept(BROWSER, kept)
    assert set(moved) == {"tab-a", "tab-b"}
    assert store.get(BROWSER, moved["tab-a"]).title == "asked in tab A"  # type: ignore[union-attr]
    assert [c.title for c in store.list(BROWSER)] == ["asked in tab B", "asked in tab A"]
    assert (
        store.import_kept(BROWSER, kept) == moved and len(store.list(BROWSER)) == 2
    )  # two tabs loading at once
    # the older one-conversation form
    older = store.import_kept(OTHER, chat("asked before tabs were kept apart"))
    assert list(older) == [""] and store.latest(OTHER).title == "asked before tabs were kept apart"  # type: ignore[union-attr]
    assert store.import_kept(BROWSER, "not a copy") == {} and store.import_kept("", kept) == {}
