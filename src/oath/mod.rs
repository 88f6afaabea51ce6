//! YubiKey OATH (YKOATH) over PC/SC.
