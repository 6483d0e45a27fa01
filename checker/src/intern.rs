//! Compiling a model to integers.
//!
//! The search never sees model values. Every distinct operation (input plus
//! observed output) of a part becomes a *class* number and every state the
//! search reaches becomes a *state* number, so a step is `(state, class) ->
//! state` on `u32`s, cached by the search after the first call, and a memo
//! key is two machine words. The [`Stepper`] trait is that integer view.

use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHasher};

use crate::check::CheckError;
use crate::model::Model;

/// A model compiled to integers, as the search uses it.
pub(crate) trait Stepper {
    /// The initial state's number.
    fn initial(&mut self) -> u32;
    /// The state after `class` in `state`, `None` if illegal there.
    fn step(&mut self, state: u32, class: u32) -> Result<Option<u32>, CheckError>;
    /// Whether `class` never changes the state when legal.
    fn read_only(&self, class: u32) -> bool;
    /// Human-readable state.
    fn describe_state(&self, state: u32) -> String;
    /// Rough heap use, for the memory budget.
    fn approx_bytes(&self) -> usize;
    /// Number of distinct states reached.
    fn state_count(&self) -> usize;
}

/// Assigns dense numbers to distinct values, storing each value once.
pub(crate) struct InternTable<T> {
    values: Vec<T>,
    /// hash -> first id with that hash; collisions chain through `next`.
    heads: FxHashMap<u64, u32>,
    next: Vec<u32>,
}

const NO_ID: u32 = u32::MAX;

impl<T: Hash + Eq> InternTable<T> {
    pub(crate) fn new() -> Self {
        InternTable {
            values: Vec::new(),
            heads: FxHashMap::default(),
            next: Vec::new(),
        }
    }

    fn hash_of(value: &T) -> u64 {
        let mut h = FxHasher::default();
        value.hash(&mut h);
        h.finish()
    }

    /// The number of `value`, assigning the next one if it is new.
    pub(crate) fn intern(&mut self, value: T) -> u32 {
        let hash = Self::hash_of(&value);
        let head = self.heads.get(&hash).copied().unwrap_or(NO_ID);
        let mut id = head;
        while id != NO_ID {
            if self.values[id as usize] == value {
                return id;
            }
            id = self.next[id as usize];
        }
        let id = u32::try_from(self.values.len()).expect("fewer than 2^32 interned values");
        self.values.push(value);
        self.next.push(head);
        self.heads.insert(hash, id);
        id
    }

    pub(crate) fn get(&self, id: u32) -> &T {
        &self.values[id as usize]
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    fn approx_bytes(&self) -> usize {
        self.values.capacity() * (std::mem::size_of::<T>() + 32)
            + self.heads.capacity() * 16
            + self.next.capacity() * 4
    }
}

/// One model part compiled to integers.
pub(crate) struct Interner<'m, M: Model> {
    model: &'m M,
    classes: InternTable<M::Op>,
    read_only: Vec<bool>,
    states: InternTable<M::State>,
}

impl<'m, M: Model> Interner<'m, M> {
    pub(crate) fn new(model: &'m M) -> Self {
        Interner {
            model,
            classes: InternTable::new(),
            read_only: Vec::new(),
            states: InternTable::new(),
        }
    }

    /// The class number of a decoded operation.
    pub(crate) fn class_of(&mut self, op: M::Op) -> u32 {
        let id = self.classes.intern(op);
        if id as usize == self.read_only.len() {
            self.read_only
                .push(self.model.is_read_only(self.classes.get(id)));
        }
        id
    }

    pub(crate) fn describe_class(&self, class: u32) -> String {
        self.model.describe_op(self.classes.get(class))
    }
}

impl<M: Model> Stepper for Interner<'_, M> {
    fn initial(&mut self) -> u32 {
        self.states.intern(self.model.init())
    }

    fn step(&mut self, state: u32, class: u32) -> Result<Option<u32>, CheckError> {
        let before = self.states.get(state);
        let op = self.classes.get(class);
        let Some(after) = self.model.step(before, op) else {
            return Ok(None);
        };
        if self.read_only[class as usize] && &after != before {
            return Err(CheckError::ModelContract {
                model: self.model.name().to_string(),
                message: format!(
                    "`{}` is declared read-only but changed the state from {} to {}",
                    self.model.describe_op(op),
                    self.model.describe_state(before),
                    self.model.describe_state(&after)
                ),
            });
        }
        Ok(Some(self.states.intern(after)))
    }

    fn read_only(&self, class: u32) -> bool {
        self.read_only[class as usize]
    }

    fn describe_state(&self, state: u32) -> String {
        self.model.describe_state(self.states.get(state))
    }

    fn approx_bytes(&self) -> usize {
        self.states.approx_bytes() + self.classes.approx_bytes()
    }

    fn state_count(&self) -> usize {
        self.states.len()
    }
}

/// Several independent parts checked as one object (partitioning turned
/// off): a state is the tuple of the parts' state numbers.
pub(crate) struct ProductInterner<'m, M: Model> {
    parts: Vec<Interner<'m, M>>,
    part_names: Vec<String>,
    /// global class -> (part, class within the part)
    class_map: Vec<(u32, u32)>,
    class_ids: FxHashMap<(u32, u32), u32>,
    states: InternTable<Box<[u32]>>,
}

impl<'m, M: Model> ProductInterner<'m, M> {
    pub(crate) fn new(parts: Vec<Interner<'m, M>>, part_names: Vec<String>) -> Self {
        ProductInterner {
            parts,
            part_names,
            class_map: Vec::new(),
            class_ids: FxHashMap::default(),
            states: InternTable::new(),
        }
    }

    /// The global class of class `local` of part `part`.
    pub(crate) fn class_of(&mut self, part: u32, local: u32) -> u32 {
        let next = self.class_map.len() as u32;
        let id = *self.class_ids.entry((part, local)).or_insert(next);
        if id == next {
            self.class_map.push((part, local));
        }
        id
    }

    pub(crate) fn describe_class(&self, class: u32) -> String {
        let (part, local) = self.class_map[class as usize];
        self.parts[part as usize].describe_class(local)
    }
}

impl<M: Model> Stepper for ProductInterner<'_, M> {
    fn initial(&mut self) -> u32 {
        let tuple: Box<[u32]> = self.parts.iter_mut().map(|p| p.initial()).collect();
        self.states.intern(tuple)
    }

    fn step(&mut self, state: u32, class: u32) -> Result<Option<u32>, CheckError> {
        let (part, local) = self.class_map[class as usize];
        let before = self.states.get(state)[part as usize];
        match self.parts[part as usize].step(before, local)? {
            None => Ok(None),
            Some(after) if after == before => Ok(Some(state)),
            Some(after) => {
                let mut tuple = self.states.get(state).clone();
                tuple[part as usize] = after;
                Ok(Some(self.states.intern(tuple)))
            }
        }
    }

    fn read_only(&self, class: u32) -> bool {
        let (part, local) = self.class_map[class as usize];
        self.parts[part as usize].read_only(local)
    }

    fn describe_state(&self, state: u32) -> String {
        let tuple = self.states.get(state);
        let fields: Vec<String> = tuple
            .iter()
            .zip(&self.part_names)
            .zip(&self.parts)
            .map(|((s, name), part)| format!("{name}: {}", part.describe_state(*s)))
            .collect();
        format!("{{{}}}", fields.join(", "))
    }

    fn approx_bytes(&self) -> usize {
        self.parts.iter().map(Stepper::approx_bytes).sum::<usize>()
            + self.states.approx_bytes()
            + self.states.len() * self.parts.len() * 4
    }

    fn state_count(&self) -> usize {
        self.states.len()
    }
}
