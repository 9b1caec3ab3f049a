//! A closed set of wire strings as a Rust enum, with one parse function that names the field.

/// Declares an enum whose variants map one-to-one to wire strings, with `as_str`, `parse`
/// (exact match), `ALL` and an OpenAPI schema listing the wire values. `parse` answers the given error code naming the field and the
/// allowed values, so every enum in the API rejects unknown values the same way.
#[macro_export]
macro_rules! str_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire string.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// Parses the exact wire string; anything else is `code` naming `field`.
            pub fn parse(
                field: &str,
                value: &str,
                code: $crate::ErrorCode,
            ) -> $crate::ApiResult<Self> {
                match value {
                    $($wire => Ok($name::$variant),)+
                    other => Err($crate::ApiError::new(
                        code,
                        format!(
                            "Invalid {field}: {other:?}; allowed values are {}",
                            [$($wire),+].join(", ")
                        ),
                    )),
                }
            }
        }

        /// Documented as a string restricted to the wire values (OpenAPI `enum`).
        impl $crate::__utoipa::PartialSchema for $name {
            fn schema() -> $crate::__utoipa::openapi::RefOr<$crate::__utoipa::openapi::schema::Schema> {
                $crate::__utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type($crate::__utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($wire),+]))
                    .into()
            }
        }

        impl $crate::__utoipa::ToSchema for $name {}

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
