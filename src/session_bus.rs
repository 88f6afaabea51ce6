//! The desktop session bus (D-Bus): one rule for reaching it, shared by the
//! desktop notifications and the Secret Service.

/// Connects to the first address that answers. The D-Bus specification
/// allows a `;`-separated list of addresses (dbus-launch writes one), which
/// zbus's address parser does not take.
pub(crate) async fn connect(address: &str) -> Result<zbus::Connection, zbus::Error> {
    let mut last = zbus::Error::Address(format!("{address:?} names no bus"));
    for candidate in address.split(';').filter(|a| !a.is_empty()) {
        let built = match zbus::connection::Builder::address(candidate) {
            Ok(builder) => builder.build().await,
            Err(e) => Err(e),
        };
        match built {
            Ok(conn) => return Ok(conn),
            Err(e) => last = e,
        }
    }
    Err(last)
}
