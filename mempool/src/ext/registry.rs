//! [`ExtRegistry`]: the start-up phase, where types get their bit and offset.
//!
//! Pure layout arithmetic: no DPDK call happens before [`ExtRegistry::start`].

use std::mem::{align_of, size_of};
use std::sync::atomic::{AtomicU32, Ordering};

use super::area::{self, Extensions};
use super::{ExtError, ExtId, ExtInfo, ExtParams, AREA_HEADER_SIZE, MAX_ALIGN, MAX_AREA_SIZE, MAX_TYPES};

/// Each registry gets its own serial, so that an [`ExtId`] minted by one registry is never
/// taken for a type of another.
static NEXT_SERIAL: AtomicU32 = AtomicU32::new(1);

/// Extension types being registered, before the framework starts.
#[derive(Debug)]
pub struct ExtRegistry {
    serial: u32,
    types: Vec<ExtInfo>,
    /// First free byte of the area.
    end: usize,
    max_align: usize,
}

impl Default for ExtRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl ExtRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        let serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
        ExtRegistry { serial, types: Vec::new(), end: AREA_HEADER_SIZE, max_align: AREA_HEADER_SIZE }
    }

    /// Registers `T` under `name`: its value will sit at a fixed offset, aligned for `T`,
    /// in every area.
    ///
    /// # Errors
    /// [`ExtError::AlreadyStarted`] once any registry has started,
    /// [`ExtError::TooManyTypes`] beyond [`MAX_TYPES`], [`ExtError::Duplicate`] for a name
    /// used twice, [`ExtError::BadType`] for an alignment above [`MAX_ALIGN`] or an area
    /// that would grow beyond [`MAX_AREA_SIZE`].
    pub fn register<T: Copy + Send + Sync + 'static>(&mut self, name: &str) -> Result<ExtId<T>, ExtError> {
        if area::claimed() {
            return Err(ExtError::AlreadyStarted);
        }
        if self.types.len() >= MAX_TYPES {
            return Err(ExtError::TooManyTypes { max: MAX_TYPES });
        }
        if self.types.iter().any(|t| t.name == name) {
            return Err(ExtError::Duplicate { name: name.to_owned() });
        }
        let (size, align) = (size_of::<T>(), align_of::<T>());
        let bad = |reason: String| Err(ExtError::BadType { name: name.to_owned(), reason });
        if align > MAX_ALIGN {
            return bad(format!("alignment {align} is above {MAX_ALIGN}"));
        }
        let offset = self.end.next_multiple_of(align);
        let end = offset + size;
        if end.next_multiple_of(AREA_HEADER_SIZE) > MAX_AREA_SIZE {
            return bad(format!("{size} bytes at offset {offset} would grow the area beyond {MAX_AREA_SIZE} bytes"));
        }
        let index = self.types.len() as u8;
        self.types.push(ExtInfo { name: name.to_owned(), index, offset, size, align, type_name: std::any::type_name::<T>() });
        self.end = end;
        self.max_align = self.max_align.max(align);
        // offset < MAX_AREA_SIZE (4096) fits in a u16.
        Ok(ExtId::new(index, offset as u16, self.serial))
    }

    /// The types registered so far.
    pub fn types(&self) -> &[ExtInfo] {
        &self.types
    }

    /// Bytes per area, header included, rounded up to 8.
    pub fn area_size(&self) -> usize {
        self.end.next_multiple_of(AREA_HEADER_SIZE)
    }

    /// The largest alignment among the types (at least 8).
    pub fn max_align(&self) -> usize {
        self.max_align
    }

    /// Creates the area pool and registers the mbuf dynamic field; from then on the ids
    /// this registry returned work on packets. One framework per process.
    ///
    /// # Errors
    /// [`ExtError::AlreadyStarted`] if a framework was started before,
    /// [`ExtError::InvalidParams`] for pool parameters DPDK would refuse, and
    /// [`ExtError::Dpdk`] when creating the pool or registering the field fails (then
    /// nothing is left behind and another registry may try again).
    pub fn start(self, params: &ExtParams) -> Result<Extensions, ExtError> {
        params.check()?;
        area::start(self.serial, self.area_size(), self.max_align, self.types, params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(dead_code)] // only the layout matters
    #[derive(Clone, Copy)]
    #[repr(align(32))]
    struct Wide([u8; 40]);

    #[allow(dead_code)]
    #[derive(Clone, Copy)]
    #[repr(align(128))]
    struct TooAligned(u8);

    #[test]
    fn offsets_are_aligned_and_fixed_in_order() {
        let mut r = ExtRegistry::new();
        let a = r.register::<u8>("a").unwrap();
        let b = r.register::<u64>("b").unwrap();
        let c = r.register::<u16>("c").unwrap();
        let d = r.register::<Wide>("d").unwrap();
        let e = r.register::<()>("e").unwrap();
        assert_eq!((a.offset(), b.offset(), c.offset(), d.offset(), e.offset()), (8, 16, 24, 32, 96));
        assert_eq!((a.index(), e.index()), (0, 4));
        assert_eq!(r.area_size(), 96);
        assert_eq!(r.max_align(), 32);
        for t in r.types() {
            assert_eq!(t.offset % t.align, 0, "{t:?}");
            assert!(t.offset >= AREA_HEADER_SIZE);
        }
        assert_eq!(r.types()[3].type_name, std::any::type_name::<Wide>());
    }

    #[test]
    fn sixteen_types_then_a_typed_error() {
        let mut r = ExtRegistry::new();
        for i in 0..MAX_TYPES {
            let id = r.register::<u32>(&format!("t{i}")).unwrap();
            assert_eq!(id.bit(), 1 << i);
        }
        assert_eq!(r.register::<u32>("one_too_many"), Err(ExtError::TooManyTypes { max: 16 }));
        assert_eq!(r.types().len(), 16);
    }

    #[test]
    fn bad_types_and_duplicates_are_refused() {
        let mut r = ExtRegistry::new();
        r.register::<u32>("x").unwrap();
        assert_eq!(r.register::<u64>("x"), Err(ExtError::Duplicate { name: "x".into() }));
        assert!(matches!(r.register::<TooAligned>("aligned"), Err(ExtError::BadType { .. })));
        assert!(matches!(r.register::<[u8; 5000]>("huge"), Err(ExtError::BadType { .. })));
        // Refused types take no space.
        assert_eq!(r.area_size(), 16);
    }

    #[test]
    fn registries_mint_distinct_ids() {
        let (mut r1, mut r2) = (ExtRegistry::new(), ExtRegistry::new());
        let a = r1.register::<u32>("x").unwrap();
        let b = r2.register::<u32>("x").unwrap();
        assert_eq!((a.index(), a.offset()), (b.index(), b.offset()));
        assert_ne!(a, b);
    }
}
