//! Memory: entries added, read, searched, pinned, unpinned and forgotten, each change with its
//! event in the same transaction; and the sweep that marks ephemeral entries expired once their
//! time has run out (daemon-only, like the lease reaper).

use maos_domain::{Memory, MemoryId, MemoryScope, Provenance, ValueError};

use super::*;
use crate::error::MemoryError;

/// The longest reason for forgetting an entry, in bytes.
pub const FORGET_REASON_MAX: usize = 1024;
/// The most entries a page of a list holds.
pub const MEMORY_PAGE_MAX: usize = 1000;
/// How many due entries the sweep expires per transaction.
const SWEEP_BATCH: usize = 1000;

fn query_error(e: QueryError) -> MemoryError {
    match e {
        QueryError::NotFound { reference, .. } => MemoryError::NotFound { reference },
        QueryError::Ambiguous { prefix, candidates } => {
            MemoryError::Ambiguous { prefix, candidates }
        }
        QueryError::Invalid(v) => MemoryError::Invalid(v),
        QueryError::Store(s) => MemoryError::Store(s),
        other => MemoryError::Store(StoreError::Backend(other.to_string())),
    }
}

/// A reason for forgetting, trimmed: none when blank; one line of at most
/// [`FORGET_REASON_MAX`] bytes.
fn forget_reason(raw: Option<String>) -> Result<Option<String>, ValueError> {
    let Some(raw) = raw else { return Ok(None) };
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let bad = |reason: String| ValueError {
        what: "reason",
        value: t.chars().take(64).collect(),
        reason,
    };
    if t.len() > FORGET_REASON_MAX {
        return Err(bad(format!(
            "it is {} bytes long; the limit is {FORGET_REASON_MAX}",
            t.len()
        )));
    }
    if t.chars().any(char::is_control) {
        return Err(bad(
            "it contains a control character or a line break; keep it to one line".into(),
        ));
    }
    Ok(Some(t.to_owned()))
}

fn check_limit(limit: usize, max: usize) -> Result<(), MemoryError> {
    if limit == 0 || limit > max {
        return Err(MemoryError::Limit { limit, max });
    }
    Ok(())
}

/// `filter` with each scope and tier once; refused when it names more than
/// [`MemoryFilter::MAX_SCOPES`] scopes.
fn checked(filter: &MemoryFilter) -> Result<MemoryFilter, MemoryError> {
    let mut f = filter.clone();
    f.scopes.sort();
    f.scopes.dedup();
    f.tiers.sort();
    f.tiers.dedup();
    if f.scopes.len() > MemoryFilter::MAX_SCOPES {
        return Err(MemoryError::Invalid(ValueError {
            what: "memory filter",
            value: format!("{} scopes", f.scopes.len()),
            reason: format!("name at most {} scopes", MemoryFilter::MAX_SCOPES),
        }));
    }
    Ok(f)
}

fn save_memory_events(
    tx: &mut dyn Transaction,
    memory: &Memory,
    events: Vec<maos_domain::MemoryEvent>,
    at: Timestamp,
) -> Result<(), StoreError> {
    tx.save_memory(memory)?;
    tx.append(
        at,
        &DomainEvent::memories(memory.id, events).collect::<Vec<_>>(),
    )
}

fn load_memory(tx: &mut dyn Transaction, id: MemoryId) -> Result<Memory, MemoryError> {
    tx.memory(id)?.ok_or_else(|| MemoryError::NotFound {
        reference: id.to_string(),
    })
}

impl<S: Store> Service<S> {
    fn resolve_memory(&self, r: &IdRef) -> Result<MemoryId, MemoryError> {
        let ids = self
            .store
            .memory_ids_with_prefix(r.as_str(), AMBIGUOUS_SHOWN + 1)?;
        unique(r, Entity::Memory, ids).map_err(query_error)
    }

    /// Adds an entry. Its scope's orchestration and its provenance's attempt must exist; an
    /// ephemeral entry expires `memory_ephemeral_ttl` from now.
    pub fn add_memory(&self, cmd: AddMemory) -> Result<Memory, MemoryError> {
        let at = self.clock.now();
        let id = MemoryId::from_bits(self.ids.next_bits());
        let ttl = self.config.memory_ephemeral_ttl;
        self.store.write(move |tx| {
            if let MemoryScope::Orchestration(o) = &cmd.scope
                && tx.orchestration(*o)?.is_none()
            {
                return Err(MemoryError::ScopeNotFound { orchestration: *o });
            }
            if let Provenance::Attempt { task, attempt } = cmd.provenance {
                let made = tx.task(task)?.map_or(0, |t| t.attempts_used());
                if attempt == 0 || attempt > made {
                    return Err(MemoryError::AttemptNotFound { task, attempt });
                }
            }
            let (memory, events) = Memory::add(id, cmd.clone().spec(), ttl, at);
            save_memory_events(tx, &memory, events, at)?;
            Ok(memory)
        })
    }

    /// The entry `id` names, whatever its state.
    pub fn get_memory(&self, id: &IdRef) -> Result<Memory, MemoryError> {
        let id = self.resolve_memory(id)?;
        self.store.memory(id)?.ok_or_else(|| MemoryError::NotFound {
            reference: id.to_string(),
        })
    }

    /// One page of entries, newest first.
    pub fn list_memories(
        &self,
        filter: &MemoryFilter,
        page: &MemoryPage,
    ) -> Result<MemoryList, MemoryError> {
        check_limit(page.limit, MEMORY_PAGE_MAX)?;
        let filter = checked(filter)?;
        Ok(self.store.memories(&filter, page, self.clock.now())?)
    }

    /// The entries with the query's words, best first.
    pub fn search_memories(&self, search: &MemorySearch) -> Result<MemoryHits, MemoryError> {
        check_limit(search.limit, MemorySearch::MAX_LIMIT)?;
        let filter = checked(&search.filter)?;
        Ok(self
            .store
            .search_memories(&search.query, &filter, search.limit, self.clock.now())?)
    }

    fn change_memory(
        &self,
        id: &IdRef,
        change: impl Fn(
            &mut Memory,
            Timestamp,
        ) -> Result<Vec<maos_domain::MemoryEvent>, TransitionError>
        + Send
        + 'static,
    ) -> Result<Memory, MemoryError> {
        let id = self.resolve_memory(id)?;
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut memory = load_memory(tx, id)?;
            let events = change(&mut memory, at)?;
            save_memory_events(tx, &memory, events, at)?;
            Ok(memory)
        })
    }

    pub fn pin_memory(&self, id: &IdRef) -> Result<Memory, MemoryError> {
        self.change_memory(id, Memory::pin)
    }

    pub fn unpin_memory(&self, id: &IdRef) -> Result<Memory, MemoryError> {
        self.change_memory(id, Memory::unpin)
    }

    pub fn forget_memory(&self, id: &IdRef, reason: Option<String>) -> Result<Memory, MemoryError> {
        let reason = forget_reason(reason)?;
        self.change_memory(id, move |m, at| m.forget(reason.clone(), at))
    }

    /// Marks expired every live, unpinned entry whose deadline has passed (the daemon calls
    /// this on a timer; until then such entries are already left out of lists and searches).
    /// Returns how many.
    pub fn expire_memories(&self) -> Result<usize, MemoryError> {
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut n = 0;
            for mut m in tx.expired_memories(at, SWEEP_BATCH)? {
                if !m.is_due(at) {
                    continue;
                }
                let events = m.expire(at)?;
                save_memory_events(tx, &m, events, at)?;
                n += 1;
            }
            Ok(n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_trimmed_bounded_and_one_line() {
        assert_eq!(forget_reason(None).unwrap(), None);
        assert_eq!(forget_reason(Some("  ".into())).unwrap(), None);
        assert_eq!(
            forget_reason(Some(" wrong ".into())).unwrap().as_deref(),
            Some("wrong")
        );
        assert!(forget_reason(Some("a\nb".into())).is_err());
        let e = forget_reason(Some("x".repeat(FORGET_REASON_MAX + 1))).unwrap_err();
        assert!(e.reason.contains("1024"));
        assert!(e.value.len() <= 64);
    }

    #[test]
    fn filters_name_each_scope_once_and_few_of_them() {
        let repo = |i: usize| MemoryScope::parse(&format!("repo:/r{i}")).unwrap();
        let f = MemoryFilter {
            scopes: vec![repo(1), MemoryScope::Global, repo(1)],
            tiers: vec![
                maos_domain::MemoryTier::Routine,
                maos_domain::MemoryTier::Routine,
            ],
            ..MemoryFilter::default()
        };
        let c = checked(&f).unwrap();
        assert_eq!(c.scopes.len(), 2);
        assert_eq!(c.tiers.len(), 1);
        let many = MemoryFilter {
            scopes: (0..65).map(repo).collect(),
            ..MemoryFilter::default()
        };
        assert!(matches!(checked(&many), Err(MemoryError::Invalid(_))));
        let enough = MemoryFilter {
            scopes: (0..64).map(repo).collect(),
            ..MemoryFilter::default()
        };
        assert!(checked(&enough).is_ok());
    }

    #[test]
    fn limits_are_bounded() {
        assert!(check_limit(0, 10).is_err());
        assert!(check_limit(11, 10).is_err());
        assert!(check_limit(10, 10).is_ok());
    }
}
