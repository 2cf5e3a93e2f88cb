//! The JSON format: one top-level object, parsed entry by entry.

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufReader, Read};
use std::rc::Rc;

use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{Each, dataset_error, io_error, serde_reason};
use crate::{Error, JsonText, Result};

const JSON_SHAPE: &str = "a .json dataset must be one JSON object of key: value pairs";

/// Counts the line breaks read through it, so that the JSON reader knows its line.
/// serde_json reads a byte at a time (with one byte of look-ahead), so the count is
/// the line the parser has reached.
struct LineCounter<R> {
    inner: R,
    breaks: Rc<Cell<u64>>,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let breaks = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        self.breaks.set(self.breaks.get() + breaks);
        Ok(n)
    }
}

/// Visits the top-level object, handing each entry to `each` as it is parsed.
struct ObjectVisitor<'a, 'b> {
    each: &'a mut Each<'b>,
    /// Line breaks read so far.
    breaks: Rc<Cell<u64>>,
    /// Set once the top-level value turned out to be an object.
    entered: &'a mut bool,
    /// The error `each` returned, carried past serde.
    stopped: &'a mut Option<Error>,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, '_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of key: value pairs")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<u64, A::Error> {
        *self.entered = true;
        let mut count = 0;
        while let Some(key) = map.next_key::<String>()? {
            let line = self.breaks.get() + 1;
            let raw = map.next_value::<Box<RawValue>>()?;
            if let Err(e) = (self.each)(key, JsonText::from_valid(raw.get()), line) {
                *self.stopped = Some(e);
                return Err(de::Error::custom("stopped by the record callback"));
            }
            count += 1;
        }
        Ok(count)
    }
}

pub(super) fn read<R: Read>(reader: R, source_name: &str, each: &mut Each<'_>) -> Result<u64> {
    let breaks = Rc::new(Cell::new(0));
    let counted = LineCounter {
        inner: BufReader::new(reader),
        breaks: Rc::clone(&breaks),
    };
    let mut de = serde_json::Deserializer::from_reader(counted);
    let mut entered = false;
    let mut stopped = None;
    let visitor = ObjectVisitor {
        each,
        breaks,
        entered: &mut entered,
        stopped: &mut stopped,
    };
    let result = de
        .deserialize_map(visitor)
        .and_then(|n| de.end().map(|()| n));
    if let Some(e) = stopped {
        return Err(e);
    }
    result.map_err(|e| {
        if e.is_io() {
            return io_error(source_name, io::Error::from(e));
        }
        let reason = if entered {
            serde_reason(&e)
        } else if e.is_data() {
            JSON_SHAPE.to_string()
        } else if e.is_eof() {
            format!("{JSON_SHAPE}, but the input is empty")
        } else {
            format!("{JSON_SHAPE}: {}", serde_reason(&e))
        };
        dataset_error(source_name, e.line() as u64, reason)
    })
}
