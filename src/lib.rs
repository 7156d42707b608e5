pub mod places;
pub mod report;
