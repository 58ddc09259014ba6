//! Internals the conformance suite cannot see through the trait, or
//! cannot make happen deterministically on a real server.

use futures::FutureExt;

use super::store::HEAP_SLACK;
use super::*;

fn counts(memory: &Memory) -> (usize, usize, usize) {
    let store = lock(&memory.store);
    (store.entries.len(), store.deadlines.len(), store.waiters.len())
}

#[tokio::test]
async fn expired_keys_nobody_reads_are_purged_by_any_later_operation() {
    let memory = Memory::new();
    for i in 0..100 {
        let key = format!("reply:{i}");
        memory
            .rpush_expire(&key, b"late reply", Duration::from_millis(20))
            .await
            .unwrap();
    }
    assert_eq!(counts(&memory), (100, 100, 0));
    tokio::time::sleep(Duration::from_millis(40)).await;
    // An operation on an unrelated key clears them all.
    assert_eq!(memory.llen("unrelated").await.unwrap(), 0);
    assert_eq!(counts(&memory), (0, 0, 0));
}

#[tokio::test]
async fn refreshing_an_expiry_does_not_grow_the_deadline_heap_without_bound() {
    let memory = Memory::new();
    memory.rpush("k", &[b"v"]).await.unwrap();
    for _ in 0..10_000 {
        assert!(memory.expire("k", Duration::from_secs(60)).await.unwrap());
    }
    let (keys, deadlines, _) = counts(&memory);
    assert_eq!(keys, 1);
    assert!(deadlines <= 2 + HEAP_SLACK, "{deadlines} deadlines kept for one key");
    assert!(matches!(memory.ttl("k").await.unwrap(), Ttl::Expires(_)));
}

#[test]
fn works_without_a_tokio_runtime() {
    let memory = Memory::new();
    futures::executor::block_on(async {
        memory.rpush_expire("k", b"v", Duration::from_millis(20)).await.unwrap();
        assert!(matches!(memory.ttl("k").await.unwrap(), Ttl::Expires(_)));
        assert_eq!(memory.blpop("k", None).await.unwrap(), Some(b"v".to_vec()));
        assert_eq!(memory.blpop("k", Some(Duration::ZERO)).await.unwrap(), None);
        memory.rpush_expire("k", b"v", Duration::from_millis(20)).await.unwrap();
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(memory.ttl("k").await.unwrap(), Ttl::Missing);
    });
}

#[tokio::test]
async fn a_pop_dropped_after_the_hand_off_puts_the_element_back_with_its_expiry() {
    let memory = Memory::new();
    let mut pop = Box::pin(memory.blpop("k", None));
    assert!((&mut pop).now_or_never().is_none(), "nothing to pop yet");
    assert_eq!(counts(&memory).2, 1, "the pop waits");

    memory
        .rpush_expire("k", b"reply", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(counts(&memory), (0, 0, 0), "handed over, not stored");
    drop(pop);

    // Back, and the key has the deadline it would have kept, so a reply
    // nobody reads still goes away by itself.
    let Ttl::Expires(left) = memory.ttl("k").await.unwrap() else {
        panic!("the key lost its expiry")
    };
    assert!(left > Duration::from_secs(59));
    assert_eq!(memory.lpop("k").await.unwrap(), Some(b"reply".to_vec()));
}

#[tokio::test]
async fn a_pop_dropped_after_the_hand_off_puts_the_element_before_later_pushes() {
    let memory = Memory::new();
    let mut pop = Box::pin(memory.blpop("k", None));
    assert!((&mut pop).now_or_never().is_none(), "nothing to pop yet");

    memory
        .rpush_expire("k", b"first", Duration::from_secs(60))
        .await
        .unwrap();
    memory.rpush("k", &[b"second"]).await.unwrap();
    drop(pop);

    // At the head; the key pushed since keeps its own (lack of) expiry,
    // as after an `LPUSH`.
    assert_eq!(memory.ttl("k").await.unwrap(), Ttl::Persistent);
    assert_eq!(memory.lpop("k").await.unwrap(), Some(b"first".to_vec()));
    assert_eq!(memory.lpop("k").await.unwrap(), Some(b"second".to_vec()));
}

#[tokio::test]
async fn an_element_whose_key_expired_meanwhile_is_not_put_back() {
    let memory = Memory::new();
    let mut pop = Box::pin(memory.blpop("k", None));
    assert!((&mut pop).now_or_never().is_none(), "nothing to pop yet");
    memory
        .rpush_expire("k", b"late", Duration::from_millis(10))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(pop);
    assert_eq!(memory.ttl("k").await.unwrap(), Ttl::Missing);
}

#[tokio::test]
async fn a_pop_dropped_after_the_hand_off_passes_the_element_to_the_next_waiter() {
    let memory = Memory::new();
    let mut first = Box::pin(memory.blpop("k", None));
    let mut second = Box::pin(memory.blpop("k", None));
    let mut third = Box::pin(memory.blpop("k", None));
    assert!((&mut first).now_or_never().is_none());
    assert!((&mut second).now_or_never().is_none());
    assert!((&mut third).now_or_never().is_none());

    assert_eq!(memory.rpush("k", &[b"a", b"b"]).await.unwrap(), 2);
    assert_eq!(counts(&memory), (0, 0, 1), "both handed over, the third waits");
    drop(first);
    assert_eq!(counts(&memory), (0, 0, 0), "`a` went to the third waiter");
    assert_eq!(second.await.unwrap(), Some(b"b".to_vec()));
    assert_eq!(third.await.unwrap(), Some(b"a".to_vec()));
    assert_eq!(memory.llen("k").await.unwrap(), 0);
}

#[tokio::test]
async fn pops_withdrawn_before_any_hand_off_leave_the_others_in_order() {
    let memory = Memory::new();
    let mut pops: Vec<_> = (0..4).map(|_| Some(Box::pin(memory.blpop("k", None)))).collect();
    for pop in pops.iter_mut().flatten() {
        assert!(pop.now_or_never().is_none());
    }
    assert_eq!(format!("{memory:?}"), "Memory { keys: 0, waiting_pops: 4 }");
    // The longest-waiting one and one in the middle give up.
    drop(pops[0].take());
    drop(pops[2].take());
    assert_eq!(format!("{memory:?}"), "Memory { keys: 0, waiting_pops: 2 }");
    assert_eq!(memory.rpush("k", &[b"a", b"b", b"c"]).await.unwrap(), 3);
    assert_eq!(pops[1].take().unwrap().await.unwrap(), Some(b"a".to_vec()));
    assert_eq!(pops[3].take().unwrap().await.unwrap(), Some(b"b".to_vec()));
    assert_eq!(memory.lpop("k").await.unwrap(), Some(b"c".to_vec()));
    assert_eq!(counts(&memory), (0, 0, 0));
}

#[tokio::test]
async fn a_pop_that_times_out_as_a_value_arrives_returns_it() {
    let memory = Memory::new();
    let mut pop = Box::pin(memory.blpop("k", Some(Duration::from_millis(10))));
    assert!((&mut pop).now_or_never().is_none());
    memory.rpush("k", &[b"v"]).await.unwrap();
    // The value is already in the receiver; whether the timer or the
    // receiver is seen first, the pop returns it.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(pop.await.unwrap(), Some(b"v".to_vec()));
    assert_eq!(counts(&memory), (0, 0, 0));
}

#[tokio::test]
async fn a_timed_out_pop_withdraws_its_registration() {
    let memory = Memory::new();
    let popped = memory.blpop("k", Some(Duration::from_millis(10))).await.unwrap();
    assert_eq!(popped, None);
    assert_eq!(counts(&memory), (0, 0, 0));
    assert_eq!(memory.rpush("k", &[b"v"]).await.unwrap(), 1);
    assert_eq!(memory.llen("k").await.unwrap(), 1);
}

#[test]
fn debug_shows_sizes() {
    let memory = Memory::new();
    assert_eq!(format!("{memory:?}"), "Memory { keys: 0, waiting_pops: 0 }");
}
