//! Moving around as a person does: from the overview's counts to the filtered task list, the
//! filter form, a task from the waiting list; and addresses that name nothing or nonsense get a
//! clear error page with the right status.

use std::time::Duration;

use crate::cdp::{Page, quote};
use crate::support::World;

/// The states of the rows of the task list.
fn listed_states(page: &Page<'_>) -> Vec<String> {
    let v = page.js(
        "Array.from(document.querySelectorAll('#task-list tr[data-task] .state')).map(e => e.textContent)",
    );
    serde_json::from_value(v).unwrap_or_default()
}

#[test]
fn from_the_counts_to_the_list_to_a_task() {
    let (world, data) = World::populated();
    let page = world.signed_in("navigation");

    // The overview's count of completed tasks leads to exactly those.
    page.click_and_wait("#counts a[href='/tasks?state=completed']");
    assert_eq!(
        page.text("location.pathname + location.search"),
        "/tasks?state=completed"
    );
    assert_eq!(listed_states(&page), ["completed", "completed"]);

    // The filter form: another state.
    page.type_into("form.filters select[name=state]", "awaiting_approval");
    page.click_and_wait("form.filters button[type=submit]");
    assert!(
        page.text("location.search")
            .contains("state=awaiting_approval"),
        "{}",
        page.text("location.search")
    );
    assert_eq!(
        listed_states(&page),
        ["awaiting approval", "awaiting approval"]
    );

    // A task of the waiting list opens its page.
    page.goto(&world.ui.at("/"));
    page.click_and_wait(&format!(
        "#waiting a[href={}]",
        quote(&format!("/tasks/{}", data.waiting))
    ));
    assert_eq!(
        page.text("document.querySelector('h1').textContent"),
        "Document the greetings"
    );
    // And its orchestration's link leads there.
    page.click_and_wait(&format!(
        "main a[href={}]",
        quote(&format!("/orchestrations/{}", data.orchestration))
    ));
    page.wait_for(
        "document.querySelector('h1').textContent.includes('Greetings')",
        Duration::from_secs(5),
    );
}

#[test]
fn addresses_that_name_nothing_get_a_clear_error_page() {
    let world = World::new();
    let page = world.signed_in("errors");
    for (path, status, heading, says) in [
        ("/tasks/zzzzzzzzzzzz", 404, "Not Found", "zzzzzzzzzzzz"),
        ("/no/such/page", 404, "Not Found", "no such page"),
        ("/tasks?state=bogus", 400, "Bad Request", "bogus"),
        (
            "/tasks/%3Cscript%3Ewindow.__pwned%3D1%3C%2Fscript%3E",
            400,
            "Bad Request",
            "",
        ),
        (
            "/orchestrations/%3Cb%3Ebold%3C%2Fb%3E",
            400,
            "Bad Request",
            "",
        ),
    ] {
        page.goto(&world.ui.at(path));
        let got = page.js(&format!("fetch({}).then(r => r.status)", quote(path)));
        assert_eq!(got, status, "{path}");
        assert_eq!(
            page.text("document.querySelector('h1').textContent"),
            heading,
            "{path}"
        );
        let text = page.text("document.querySelector('main').textContent");
        assert!(text.contains(says), "{path}: {text}");
        assert_eq!(page.js("window.__pwned === undefined"), true, "{path}");
        assert_eq!(
            page.js("document.querySelector('main script, main b') === null"),
            true,
            "{path}: the address became markup"
        );
        // The way back is there.
        assert_eq!(
            page.js("document.querySelector(\"a[href='/']\") !== null"),
            true,
            "{path}"
        );
    }
}
